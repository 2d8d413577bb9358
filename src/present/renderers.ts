/**
 * Everything the Presenter draws with, loaded on first use (outputs.ts): the fonts, the QR
 * encoder and the voice texts build their tables when evaluated, and a speaker that boots
 * linked never shows a code, so none of it belongs on the boot path.
 */
export { segmentFrames } from "./segment.ts";
export { screenFrame } from "./screen.ts";
export { terminalText } from "./terminal.ts";
export { repeatSchedule, voicePrompt } from "./voice.ts";
