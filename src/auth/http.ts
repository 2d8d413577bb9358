/**
 * One form POST with a time limit on the injected clock and a bound on the answer's size: the
 * transport under every auth exchange. It returns the raw answer; the process steps
 * (codepair.ts, token.ts) decide what it means.
 */
import { ByteBuilder } from "../bytes.ts";
import type { Clock } from "../clock.ts";
import { invalidArgument, oneLine } from "../text.ts";
import {
  BODY_TOO_LARGE,
  type FormResponse,
  OAuthError,
  ProtocolError,
  safeUrl,
  TransportError,
  type TransportKind,
} from "./errors.ts";
import type { Fetch, FetchResponse } from "./types.ts";

export type { FormResponse } from "./errors.ts";

/** Default bound on an answer's body: 64 KiB (a token answer is about 5 KB). */
export const DEFAULT_MAX_BYTES = 64 * 1024;

/**
 * No certificate check can succeed before this wall-clock time: this build did not exist
 * earlier, so a clock reading before it means the clock is unset (no RTC, no NTP yet).
 */
export const BUILD_TIME_FLOOR: number = Date.UTC(2026, 0, 1, 0, 0, 0);

export interface PostFormOptions {
  readonly clock: Clock;
  /** Time limit for the whole exchange, headers and body, in monotonic milliseconds. */
  readonly timeoutMs: number;
  /** Cancels the request: `TransportError` `aborted`. */
  readonly signal?: AbortSignal;
  /** Largest body read, in bytes (default `DEFAULT_MAX_BYTES`). */
  readonly maxBytes?: number;
  /**
   * Extra request headers (e.g. `Accept-Language`). `Content-Type` and `Accept` are always
   * linkd's own and cannot be overridden.
   */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * POSTs `form` as `application/x-www-form-urlencoded` to `url` with `Accept: application/json`,
 * redirects not followed (a 3xx comes back as it is), and returns the status, the body parsed
 * as JSON (undefined when empty or not JSON) and the text.
 *
 * Fails with:
 * - `TransportError` `timeout` when no full answer came within `timeoutMs` on `opts.clock`
 *   (the request is aborted then; a `FakeClock` triggers it by `advance`);
 * - `TransportError` `aborted` when `opts.signal` aborts (or was aborted before the call);
 * - `TransportError` `network` | `tls` | `clock_unset` as `classifyFetchError` decides;
 * - `ProtocolError` `BODY_TOO_LARGE` when the body is larger than `maxBytes`: refused from
 *   `Content-Length` before reading, or as soon as the bytes read pass the bound (the stream is
 *   cancelled); the body is held in one buffer of at most twice `maxBytes`, however it is
 *   chunked or trickled;
 * - `TypeError` (`code` `ERR_INVALID_ARG_VALUE`) for a bad url or option.
 */
export function postForm(
  fetch: Fetch,
  url: string,
  form: Readonly<Record<string, string>>,
  opts: PostFormOptions,
): Promise<FormResponse> {
  return send(fetch, url, "POST", new URLSearchParams(form).toString(), opts);
}

/**
 * GETs `url` with `Accept: application/json` (and `opts.headers`, e.g. an `Authorization` bearer
 * token for the profile endpoint), under the same time limit, size bound and failures as
 * `postForm`. The headers' values never reach an error message.
 */
export function getJson(fetch: Fetch, url: string, opts: PostFormOptions): Promise<FormResponse> {
  return send(fetch, url, "GET", undefined, opts);
}

async function send(
  fetch: Fetch,
  url: string,
  method: "GET" | "POST",
  body: string | undefined,
  opts: PostFormOptions,
): Promise<FormResponse> {
  const target = checkUrl(url);
  if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) {
    throw invalidArgument(`postForm(): timeoutMs must be a positive number, got ${opts.timeoutMs}`);
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
    throw invalidArgument(`postForm(): maxBytes must be a positive integer, got ${maxBytes}`);
  }
  // A plain record, not `Headers`: the daemon's path never builds Deno's fetch classes.
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower !== "content-type" && lower !== "accept") headers[name] = value;
  }
  if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  headers["accept"] = "application/json";

  const { clock, signal } = opts;
  if (signal?.aborted) throw abortedError(method, target, signal.reason);

  const request = new AbortController();
  const timer = new AbortController();
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const stop = (err: TransportError) => {
    request.abort(err);
    fail(err);
  };
  const onAbort = () => stop(abortedError(method, target, signal?.reason));
  signal?.addEventListener("abort", onAbort, { once: true });
  clock.sleep(opts.timeoutMs, timer.signal).then(
    () =>
      stop(
        new TransportError(
          "timeout",
          `${method} ${target} timed out after ${opts.timeoutMs} ms`,
          { url: target },
        ),
      ),
    () => {}, // the exchange ended first and cancelled the timer
  );

  const init = { method, headers, ...(body !== undefined ? { body } : {}) };
  const work = exchange(fetch, url, target, init, request.signal, maxBytes, clock);
  work.catch(() => {}); // after a timeout or an abort its own failure is superseded
  try {
    return await Promise.race([work, failed]);
  } finally {
    timer.abort();
    signal?.removeEventListener("abort", onAbort);
  }
}

async function exchange(
  fetch: Fetch,
  url: string,
  target: string,
  init: { method: "GET" | "POST"; headers: Record<string, string>; body?: string },
  signal: AbortSignal,
  maxBytes: number,
  clock: Clock,
): Promise<FormResponse> {
  let res: FetchResponse;
  try {
    res = await fetch(url, { ...init, redirect: "manual", signal });
  } catch (e) {
    throw signal.aborted ? signal.reason : transportError(e, init.method, target, clock);
  }
  const bytes = await readBounded(res, init.method, target, signal, maxBytes, clock);
  let text: string;
  let body: unknown = undefined;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // Not UTF-8, so not JSON (RFC 8259 section 8.1); keep a readable text for diagnostics.
    return Object.freeze({
      status: res.status,
      body: undefined,
      text: new TextDecoder().decode(bytes),
    });
  }
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined; // the process step says what is wrong with it
    }
  }
  return Object.freeze({ status: res.status, body, text });
}

async function readBounded(
  res: FetchResponse,
  method: string,
  target: string,
  signal: AbortSignal,
  maxBytes: number,
  clock: Clock,
): Promise<Uint8Array> {
  const tooLarge = (what: string) =>
    new ProtocolError(
      BODY_TOO_LARGE,
      `Response from ${target} is larger than ${maxBytes} bytes (${what})`,
      { status: res.status },
    );
  const header = res.headers.get("content-length");
  const declared = header !== null && /^\s*\d+\s*$/.test(header) ? Number(header) : null;
  if (declared !== null && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(`Content-Length ${declared}`);
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const onAbort = () => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  // One buffer however the body comes (65,536 one-byte pieces are one array, not 65,536).
  const body = new ByteBuilder(declared || 4096);
  let total = 0;
  try {
    for (;;) {
      let step: { done: boolean; value?: Uint8Array };
      try {
        step = await reader.read();
      } catch (e) {
        throw signal.aborted ? signal.reason : transportError(e, method, target, clock);
      }
      if (step.done) break;
      const piece = step.value ?? new Uint8Array(0);
      total += piece.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(`${total} bytes read so far`);
      }
      body.append(piece);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  return body.bytes();
}

function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidArgument("postForm(): url is not an absolute URL");
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw invalidArgument(`postForm(): url must be http or https, got ${u.protocol}`);
  }
  return safeUrl(url);
}

function abortedError(method: string, target: string, reason: unknown): TransportError {
  return new TransportError("aborted", `${method} ${target} was cancelled`, {
    url: target,
    ...(reason === undefined ? {} : { cause: reason }),
  });
}

function transportError(e: unknown, method: string, target: string, clock: Clock): Error {
  // An injected fetch may already speak linkd's errors: keep them.
  if (e instanceof TransportError || e instanceof ProtocolError || e instanceof OAuthError) {
    return e;
  }
  const kind = classifyFetchError(e, clock);
  const detail = errorDetail(e);
  const why: Record<TransportKind, string> = {
    timeout: "timed out",
    network: "cannot connect",
    tls: "TLS error",
    clock_unset: `certificate check failed, the clock may be unset (wall clock ${
      wallClock(clock)
    })`,
    aborted: "cancelled",
  };
  return new TransportError(
    kind,
    `${method} ${target} failed: ${why[kind]}${detail ? ` (${detail})` : ""}`,
    { url: target, cause: e },
  );
}

function wallClock(clock: Clock): string {
  const now = clock.now();
  return Number.isFinite(now) && Math.abs(now) < 8.64e15 ? new Date(now).toISOString() : "invalid";
}

/** The messages of an error and its causes, outermost first (at most 6). */
function messages(e: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur !== undefined && cur !== null; i++) {
    if (cur instanceof Error || (typeof cur === "object" && "message" in cur)) {
      const m = (cur as { message?: unknown }).message;
      if (typeof m === "string" && m !== "") out.push(m);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      out.push(String(cur));
      break;
    }
  }
  return out;
}

/**
 * The useful part of the innermost message, for a TransportError's message: Deno 2.9 throws
 * `TypeError: fetch failed` caused by `Error: error sending request for url (URL): client
 * error (Connect): WHY`; this keeps WHY, with any URL's query string removed, on one line.
 */
function errorDetail(e: unknown): string {
  const all = messages(e);
  const inner = all[all.length - 1];
  if (inner === undefined) return "";
  const why = inner
    .replace(/^error sending request for url \([^)]*\):\s*/i, "")
    .replace(/^client error \([^)]*\):\s*/i, "")
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#)]*)[?#][^\s)]*/gi, "$1");
  return why === "fetch failed" ? "" : oneLine(why, 200);
}

// What Deno 2.9.6 produces (recorded against real sockets on 127.0.0.1, see http_test.ts). The
// thrown error is `TypeError: fetch failed`; its `cause` is an `Error` whose message is:
//   https:// to a plain-HTTP server:
//     "error sending request for url (https://127.0.0.1:37165/x): client error (Connect):
//      received corrupt message of type InvalidContentType"
//   a closed port:
//     "... client error (Connect): tcp connect error: Connection refused (os error 111)"
//   an unknown host:
//     "... client error (Connect): dns error: failed to lookup address information: Name or
//      service not known"
//   a certificate from an unknown CA:
//     "... client error (Connect): invalid peer certificate: UnknownIssuer"
//   an expired certificate:
//     "... client error (Connect): invalid peer certificate: certificate expired: verification
//      time 1795555815 (UNIX), but certificate is not valid after 978307200 (817248615 seconds
//      ago)"
//   a certificate not valid yet:
//     "... client error (Connect): invalid peer certificate: certificate not valid yet:
//      verification time 1795555815 (UNIX), but certificate is not valid before 3786912000
//      (1991356185 seconds in future)"
// An aborted fetch rejects with the signal's reason, or `DOMException` `AbortError` ("The signal
// has been aborted") when the signal has none.
const CLOCK_MARKERS = /expired|not valid yet|not yet valid|NotValidYet/i;
const TLS_MARKERS =
  /invalid peer certificate|certificate|\btls\b|\bssl\b|handshake|corrupt message|InvalidContentType|UnknownIssuer|BadSignature|alert|NotValidForName|HandshakeFailure/i;
const TIMEOUT_MARKERS = /timed out|\btimeout\b|os error 110\b|ETIMEDOUT/i;

/**
 * Sorts a `fetch` rejection into a `TransportKind`:
 * 1. an `AbortError` is `aborted`, a `TimeoutError` (`AbortSignal.timeout`) is `timeout`;
 * 2. a TLS or certificate failure is `clock_unset` when the certificate is "expired" or "not
 *    valid yet" (a wrong clock is the likely cause on a speaker; a server whose certificate
 *    really expired is reported the same way, and retrying after the clock moves is harmless)
 *    or when `clock.now()` is before `BUILD_TIME_FLOOR`; otherwise `tls`;
 * 3. an OS or library timeout (connect timed out) is `timeout`;
 * 4. everything else (DNS, refused, reset, unreachable, anything unknown) is `network`.
 * The texts are matched on the error and its `cause` chain.
 */
export function classifyFetchError(e: unknown, clock: Clock): TransportKind {
  const name = e instanceof Error || e instanceof DOMException ? e.name : "";
  if (name === "AbortError") return "aborted";
  if (name === "TimeoutError") return "timeout";
  const text = messages(e).join(" | ");
  if (TLS_MARKERS.test(text)) {
    if (CLOCK_MARKERS.test(text) || clock.now() < BUILD_TIME_FLOOR) return "clock_unset";
    return "tls";
  }
  if (TIMEOUT_MARKERS.test(text)) return "timeout";
  return "network";
}
