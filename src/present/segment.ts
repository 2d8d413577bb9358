/**
 * The contract's `segment` payload: what an N-digit LED segment display shows for a code.
 *
 * - A code that fits is one frame, left-aligned, blank digits after it.
 * - A longer code scrolls: frame k shows the characters k .. k+digits-1 of the code followed by
 *   `gap` blank digits, read cyclically, so the frames loop seamlessly (the display plays them
 *   in order, `frame_ms` each, and starts over) and the blank gap marks where the code begins.
 *   That is `code length + gap` frames; the first frame shows the code's first characters.
 * - The dash of an RFC 8628 code ("BCDF-GHJK") is the middle segment (g, or g1+g2), a character
 *   of its own; letters are case-insensitive.
 */
import type { Segment } from "../contract.ts";
import { DEFAULT_SEGMENT, digitsProblem, type SegmentKind } from "./geometry.ts";
import { segmentMask } from "./segment_font.ts";

export interface SegmentOptions {
  /** Digits of the display (default 4; MIN_DIGITS to MAX_DIGITS, geometry.ts). */
  digits?: number;
  /** 7 or 14 segments (default 7). */
  kind?: SegmentKind;
  /** How long each frame shows, in ms (default 500). */
  frameMs?: number;
  /** Blank digits between the end of a scrolling code and its start (default 1). */
  gap?: number;
}

export const DEFAULT_DIGITS = DEFAULT_SEGMENT.digits;
export const DEFAULT_FRAME_MS = 500;

function wholeAtLeast(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min || v > 1_000_000) {
    throw new RangeError(`segment ${name} must be a whole number ≥ ${min}: ${v}`);
  }
  return v;
}

export function segmentFrames(code: string, opts: SegmentOptions = {}): Segment {
  const digits = opts.digits ?? DEFAULT_DIGITS;
  const bad = digitsProblem(digits);
  if (bad !== null) throw new RangeError(`segment digits must be ${bad}: ${digits}`);
  const frameMs = wholeAtLeast("frameMs", opts.frameMs ?? DEFAULT_FRAME_MS, 1);
  const gap = wholeAtLeast("gap", opts.gap ?? 1, 1);
  const kind = opts.kind ?? DEFAULT_SEGMENT.kind;
  const masks = [...code.trim()].map((c) => segmentMask(c, kind));
  if (masks.length <= digits) {
    const frame = [...masks, ...new Array<number>(digits - masks.length).fill(0)];
    return { digits, kind, frames: [frame], frame_ms: frameMs };
  }
  const ring = [...masks, ...new Array<number>(gap).fill(0)];
  const frames: number[][] = [];
  for (let k = 0; k < ring.length; k++) {
    frames.push(Array.from({ length: digits }, (_, i) => ring[(k + i) % ring.length]!));
  }
  return { digits, kind, frames, frame_ms: frameMs };
}
