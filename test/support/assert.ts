/** Assertions for linkd's coded errors, shared by the test files. */
import * as assert from "uvu/assert";
import { type ErrorCode, isLinkdError, type LinkdError } from "../../src/errors.ts";

/** Fails the test with `message` (uvu's unreachable, typed as never). */
export function fail(message: string): never {
  assert.unreachable(message);
  throw new Error(message);
}

/**
 * Runs `fn` and requires a LinkdError with `code`, a one-line message, and `text` in it when
 * given; returns the error.
 */
export function throwsCode(fn: () => unknown, code: ErrorCode, text?: string): LinkdError {
  try {
    fn();
  } catch (e) {
    if (!isLinkdError(e)) fail(`threw ${String(e)}, not a LinkdError`);
    assert.is(e.code, code, `threw ${e.code} (${e.message}), expected ${code}`);
    assert.not.match(e.message, /\n/, "error messages are one line");
    if (text !== undefined) assert.ok(e.message.includes(text), `"${e.message}" mentions ${text}`);
    return e;
  }
  fail(`nothing was thrown; expected ${code}`);
}

/** Runs `fn`, requires the LinkdError `throwsCode` requires, and returns its one-line message. */
export function failsWith(fn: () => unknown, code: ErrorCode): string {
  return throwsCode(fn, code).message;
}

/** The code of the LinkdError `fn` throws, or a description of what else happened. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isLinkdError(e) ? e.code : `not a LinkdError: ${e}`;
  }
  return "no error";
}
