/**
 * Shows a pairing code on the outputs chosen by `display.outputs`: voice (`say` payloads, said
 * again on a schedule while the code is valid), the LED segment display (`segment`), the screen
 * (`display`) and the terminal. Each output is computed and delivered on its own, inside its own
 * try/catch (a sink's rejected promise included): one that fails is reported through `onError`
 * and never keeps the others from showing the code. `clear()` stops the voice repeats and blanks
 * the segment display and the screen (`null` payloads, for the bus to clear its retained topics).
 */
import type { Clock } from "../clock.ts";
import type { Display, PairingInfo, Say, Segment } from "../contract.ts";
import type { SegmentOptions } from "./segment.ts";
import type { ScreenOptions } from "./screen.ts";
import type { TerminalOptions } from "./terminal.ts";
import type { RepeatOptions, VoiceOptions } from "./voice.ts";

/** The outputs `display.outputs` may name: this module owns the list, config.ts checks it. */
export type Output = "voice" | "segment" | "screen" | "terminal";
export const OUTPUTS: readonly Output[] = ["voice", "segment", "screen", "terminal"];

type Renderers = typeof import("./renderers.ts");
let renderers: Promise<Renderers> | null = null;

/** The drawing code, evaluated when a code is first shown (renderers.ts says why). */
function loadRenderers(): Promise<Renderers> {
  renderers ??= import("./renderers.ts");
  return renderers;
}

type Sink<T> = (payload: T) => void | Promise<void>;

export interface PresenterSinks {
  say?: Sink<Say>;
  /** A frame set to show, or null to blank the display. */
  segment?: Sink<Segment | null>;
  /** A frame to show, or null to blank the screen. */
  display?: Sink<Display | null>;
  terminal?: Sink<string>;
}

export interface PresenterOptions {
  outputs: readonly Output[];
  /** BCP 47 language of the voice prompt (`display.lang`). */
  lang: string;
  sinks: PresenterSinks;
  clock: Clock;
  /** Told of each output that failed (default: one line on stderr). */
  onError?: (output: Output, error: unknown) => void;
  /** Told what an output had to leave out (the screen's `notes`). */
  onNotes?: (output: Output, notes: string[]) => void;
  voice?: VoiceOptions & RepeatOptions;
  segment?: SegmentOptions;
  screen?: ScreenOptions;
  terminal?: Omit<TerminalOptions, "segment">;
}

function defaultOnError(output: Output, error: unknown): void {
  const msg = error instanceof Error ? error.message : String(error);
  console.error(`linkd: the ${output} output failed: ${msg}`);
}

export class Presenter {
  readonly #o: PresenterOptions;
  readonly #outputs: Output[];
  #repeats: AbortController | null = null;

  constructor(options: PresenterOptions) {
    this.#o = options;
    this.#outputs = [...new Set(options.outputs)];
  }

  /** The outputs this presenter drives, in the configured order without duplicates. */
  get outputs(): readonly Output[] {
    return this.#outputs;
  }

  /** Shows a code on every configured output; resolves when each has delivered or failed. */
  async show(p: PairingInfo): Promise<void> {
    this.#stopRepeats();
    const repeats = new AbortController();
    this.#repeats = repeats;
    await Promise.all(this.#outputs.map((o) => this.#run(o, () => this.#show(o, p, repeats))));
  }

  /** Stops the voice repeats and blanks the segment display and the screen. */
  async clear(): Promise<void> {
    this.#stopRepeats();
    await Promise.all(this.#outputs.map((o) => this.#run(o, () => this.#clear(o))));
  }

  #stopRepeats(): void {
    this.#repeats?.abort();
    this.#repeats = null;
  }

  #sink<K extends keyof PresenterSinks>(name: K, output: Output): NonNullable<PresenterSinks[K]> {
    const s = this.#o.sinks[name];
    if (!s) throw new Error(`no ${name} sink for the ${output} output`);
    return s;
  }

  async #show(output: Output, p: PairingInfo, repeats: AbortController): Promise<void> {
    const o = this.#o;
    const { repeatSchedule, screenFrame, segmentFrames, terminalText, voicePrompt } =
      await loadRenderers();
    switch (output) {
      case "voice": {
        const say = this.#sink("say", output);
        const prompt = voicePrompt(p, o.lang, o.voice ?? {});
        void this.#repeat(repeatSchedule(p, o.voice ?? {}), prompt, repeats.signal);
        await say(prompt);
        return;
      }
      case "segment":
        await this.#sink("segment", output)(segmentFrames(p.user_code, o.segment ?? {}));
        return;
      case "screen": {
        const display = this.#sink("display", output);
        const f = screenFrame(p, o.screen ?? {});
        if (f.notes.length) o.onNotes?.(output, f.notes);
        await display({ width: f.width, height: f.height, bitmap: f.bitmap });
        return;
      }
      case "terminal": {
        const terminal = this.#sink("terminal", output);
        let segment: TerminalOptions["segment"];
        try {
          const payload = segmentFrames(p.user_code, o.segment ?? {});
          segment = { payload, kind: payload.kind };
        } catch {
          segment = undefined; // the segment output reports its own failure
        }
        await terminal(terminalText(p, { ...o.terminal, ...(segment ? { segment } : {}) }));
        return;
      }
    }
  }

  async #clear(output: Output): Promise<void> {
    switch (output) {
      case "voice":
        return;
      case "segment":
        await this.#sink("segment", output)(null);
        return;
      case "screen":
        await this.#sink("display", output)(null);
        return;
      case "terminal":
        await this.#sink("terminal", output)("Pairing ended: the code is no longer shown.");
        return;
    }
  }

  /** Says `prompt` again on the schedule, until aborted. Never rejects. */
  async #repeat(schedule: number[], prompt: Say, signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    const start = clock.monotonic();
    for (const at of schedule) {
      try {
        await clock.sleep(Math.max(0, start + at - clock.monotonic()), signal);
      } catch {
        return; // aborted
      }
      if (signal.aborted) return;
      await this.#run("voice", () => this.#sink("say", "voice")(prompt));
    }
  }

  /** Runs one output's work; a throw or a rejection goes to onError, never further. */
  async #run(output: Output, work: () => void | Promise<void>): Promise<void> {
    try {
      await work();
    } catch (e) {
      try {
        (this.#o.onError ?? defaultOnError)(output, e);
      } catch {
        // an error reporter that throws must not stop the other outputs either
      }
    }
  }
}
