/**
 * The text rules every module shares, written once: what a control character is, how any text
 * (a server's description, an OS error, a message that echoes argv) is made one clean line for a
 * log or stderr, and how a caller's mistake is thrown.
 *
 * A leaf module: it imports nothing, so that the lowest layers (bus/topics.ts, net/) can use it.
 */

/** The `code` of the TypeError a caller's mistake throws (as Node and oauth4webapi name it). */
export const ERR_INVALID_ARG_VALUE = "ERR_INVALID_ARG_VALUE";

/**
 * A caller's mistake (a wrong option, an argument out of range), not bad data: a `TypeError`
 * with `code` `ERR_INVALID_ARG_VALUE`, thrown before anything is sent or written.
 */
export function invalidArgument(
  message: string,
): TypeError & { code: typeof ERR_INVALID_ARG_VALUE } {
  const code: typeof ERR_INVALID_ARG_VALUE = ERR_INVALID_ARG_VALUE;
  return Object.assign(new TypeError(message), { code });
}

/** A control character: C0 (U+0000 to U+001F), DEL and C1 (U+007F to U+009F). */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Whether `s` holds a control character (C0, DEL or C1; see CONTROL). */
export function hasControl(s: string): boolean {
  return CONTROL.test(s);
}

/** Runs of control characters and white space (U+2028 and U+2029 included): what splits a line. */
// deno-lint-ignore no-control-regex
const BREAKS = /[\s\u0000-\u001f\u007f-\u009f]+/g;
/** One control character or line separator: what `oneLine(s, max, "each")` blanks. */
// deno-lint-ignore no-control-regex
const BREAK = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * `s` as one line, of at most `max` characters (an ellipsis, `…`, marks a cut).
 *
 * - `"runs"` (the default), for text from elsewhere (a server's description, an OS error): each
 *   run of control characters and white space becomes one space and the ends are trimmed;
 * - `"each"`, for a message that echoes the caller's input (a path from argv): each control
 *   character or line separator becomes one space and nothing else changes, so the echo keeps
 *   its length and the user still sees where the odd characters were.
 */
export function oneLine(s: string, max = Infinity, mode: "runs" | "each" = "runs"): string {
  const flat = mode === "each" ? s.replace(BREAK, " ") : s.replace(BREAKS, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** `ms` as an ISO 8601 time, or as a plain number when no date can show it (never throws). */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} (Unix ms)` : d.toISOString();
}
