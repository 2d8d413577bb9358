/**
 * The display geometry `display.segment` and `display.screen` may configure, and its bounds: one
 * owner for each rule, which config.ts asks when the file is loaded and segment.ts and screen.ts
 * enforce when they draw. A leaf module (no fonts, no QR code), so loading the config does not
 * evaluate the drawing code (renderers.ts says why that waits).
 *
 * The screen's smallest sizes were measured with screen.ts on the contract's pairings (an LWA
 * 6-character code with its URI, an RFC 8628 "BCDF-GHJK" code with its complete URI): from these
 * sizes up, every frame shows the code in large type and a QR code (screen_test.ts checks both
 * corners and that one pixel less loses the QR). Below them the screen would drop the QR.
 */

/** The segment display kinds: 7 or 14 segments a digit (segment_font.ts). */
export type SegmentKind = 7 | 14;
export const SEGMENT_KINDS: readonly SegmentKind[] = [7, 14];

/** Digits a segment display may have: one scrolls the code a character at a time. */
export const MIN_DIGITS = 1;
export const MAX_DIGITS = 32;

/** Today's display: 4 digits of 7 segments, a 128×64 screen. */
export const DEFAULT_SEGMENT = { digits: 4, kind: 7 } as const;
export const DEFAULT_SCREEN = { width: 128, height: 64 } as const;

/** Largest screen side, in pixels (a 1024×1024 frame is 128 KiB). */
export const MAX_SCREEN_SIDE = 1024;

/**
 * The two smallest screens that hold the code and a QR code: a tall one (QR on top, code below)
 * and a wide one (QR on the left, code beside it). A screen must reach one of them.
 */
export const MIN_SCREENS = [{ width: 33, height: 64 }, { width: 80, height: 33 }] as const;

/** Why `digits` cannot be a segment display's, or null. */
export function digitsProblem(digits: number): string | null {
  if (!Number.isInteger(digits) || digits < MIN_DIGITS || digits > MAX_DIGITS) {
    return `a whole number from ${MIN_DIGITS} to ${MAX_DIGITS}`;
  }
  return null;
}

/** Why a `width`×`height` screen cannot show the code with a QR code, or null. */
export function screenProblem(width: number, height: number): string | null {
  for (const [name, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_SCREEN_SIDE) {
      return `${name} must be a whole number from 1 to ${MAX_SCREEN_SIDE}`;
    }
  }
  if (MIN_SCREENS.some((m) => width >= m.width && height >= m.height)) return null;
  const sizes = MIN_SCREENS.map((m) => `${m.width}x${m.height}`).join(" or ");
  return `${width}x${height} is too small for the code beside a QR code; use at least ${sizes}`;
}
