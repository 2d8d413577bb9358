/**
 * The errors of the auth exchanges. Three kinds of failure never mix (see ../shared/STYLE.md):
 *
 * - a caller's mistake: a `TypeError` with `code` `ERR_INVALID_ARG_VALUE` (`invalidArgument`, ../text.ts);
 * - the server sent an OAuth error (`OAuthError`: `error`, `errorDescription`, `status`);
 * - the server broke the protocol (`ProtocolError`, `code` from the constants below, `field`);
 * - and, apart from the server, the way there failed (`TransportError`, `kind`).
 *
 * No secret ever reaches a message, `String(err)`, `err.stack` or `JSON.stringify(err)`:
 * messages quote no string value from a response except the OAuth `error` code and a redacted,
 * bounded `error_description`; the raw response is attached as a NON-ENUMERABLE `response`
 * property, so logging an error never prints a body that holds a token.
 */
import { hasControl, oneLine } from "../text.ts";

/** What `postForm` returns and what the process steps validate (the raw exchange, read-only). */
export interface FormResponse {
  readonly status: number;
  /** The parsed JSON body, or undefined when the body was empty or not JSON. */
  readonly body: unknown;
  /** The body as text (bounded by `postForm`'s `maxBytes`). */
  readonly text: string;
}

/** Which exchange an error belongs to; starts every message. */
export type Operation = "Code-pair" | "Token" | "Refresh" | "Profile";

// ---------------------------------------------------------------------------------------------
// ProtocolError codes

/** The HTTP status was not the one the protocol allows (and no OAuth error body explained it). */
export const INVALID_STATUS = "INVALID_STATUS";
/** The body was not JSON, or not a JSON object. */
export const INVALID_BODY = "INVALID_BODY";
/** A field of the JSON object is missing, of the wrong type, or out of bounds (see `field`). */
export const INVALID_FIELD = "INVALID_FIELD";
/** The body is larger than the bound the request was sent with. */
export const BODY_TOO_LARGE = "BODY_TOO_LARGE";

export type ProtocolErrorCode =
  | typeof INVALID_STATUS
  | typeof INVALID_BODY
  | typeof INVALID_FIELD
  | typeof BODY_TOO_LARGE;

function hide(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: false,
    writable: false,
    configurable: true,
  });
}

/** Keeps `name` off the instance (on the prototype), like the built-in errors. */
function nameClass(cls: { prototype: Error }, name: string): void {
  Object.defineProperty(cls.prototype, "name", {
    value: name,
    enumerable: false,
    writable: true,
    configurable: true,
  });
}

/** The server answered with an OAuth error body (`{"error", "error_description"?}`). */
export class OAuthError extends Error {
  /** The OAuth error code, e.g. `authorization_pending`, `invalid_grant`, `invalid_scope`. */
  readonly error: string;
  /** The server's `error_description`, one line, at most 300 characters, token-like runs redacted. */
  declare readonly errorDescription?: string;
  /** The HTTP status (400 or 401 usually). */
  readonly status: number;
  /** Which exchange was refused. */
  readonly operation: Operation;
  /** The raw exchange; non-enumerable. */
  declare readonly response?: FormResponse;

  constructor(
    operation: Operation,
    error: string,
    status: number,
    options: { description?: string; response?: FormResponse } = {},
  ) {
    const code = oneLine(error, 100);
    const description = options.description === undefined
      ? undefined
      : redact(oneLine(options.description, 300));
    super(
      `${operation} request refused: ${code}${description ? ` (${description})` : ""}`,
    );
    this.operation = operation;
    this.error = error;
    if (description !== undefined) this.errorDescription = description;
    this.status = status;
    if (options.response !== undefined) hide(this, "response", options.response);
  }
}
nameClass(OAuthError, "OAuthError");

/** The server broke the protocol: wrong status, a body that is not a JSON object, a bad field. */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  /** The response field at fault (for `INVALID_FIELD`). */
  declare readonly field?: string;
  /** The HTTP status of the response, when there was one. */
  declare readonly status?: number;
  /** The raw exchange; non-enumerable. */
  declare readonly response?: FormResponse;

  constructor(
    code: ProtocolErrorCode,
    message: string,
    options: { field?: string; status?: number; response?: FormResponse } = {},
  ) {
    super(message);
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.status !== undefined) this.status = options.status;
    if (options.response !== undefined) hide(this, "response", options.response);
  }
}
nameClass(ProtocolError, "ProtocolError");

/**
 * How a request failed to get an answer:
 * - `timeout`: no full answer within the request's time limit;
 * - `network`: DNS, connection refused or reset, no route;
 * - `tls`: the TLS handshake or the certificate check failed;
 * - `clock_unset`: a certificate check failed while the wall clock is before
 *   `BUILD_TIME_FLOOR`, or failed on a certificate "expired" or "not valid yet": the clock is
 *   most likely wrong (no RTC, no NTP yet); retry after the clock moves;
 * - `aborted`: the caller's signal cancelled the request.
 */
export type TransportKind = "timeout" | "network" | "tls" | "clock_unset" | "aborted";

/** A request got no answer. The message names the URL without its query string, never a body. */
export class TransportError extends Error {
  readonly kind: TransportKind;
  /** The request URL without query string or fragment. */
  declare readonly url?: string;

  constructor(
    kind: TransportKind,
    message: string,
    options: { url?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    if (options.url !== undefined) this.url = options.url;
  }
}
nameClass(TransportError, "TransportError");

// ---------------------------------------------------------------------------------------------
// Classification

/** LWA's words for a scope the security profile is not enabled for, in any body or case. */
const UNKNOWN_SCOPE = /an unknown scope was requested/i;

/** The description linkd gives an unknown-scope refusal that came as a page, not as JSON. */
export const UNKNOWN_SCOPE_DESCRIPTION = "An unknown scope was requested";

/**
 * True when the server refused a scope as unknown or not enabled for this client: an
 * `OAuthError` `invalid_scope` (checkStatus also makes one of any 4xx page that says LWA's
 * "An unknown scope was requested", JSON or not), or any OAuth error whose description says it.
 */
export function isScopeRefusal(e: unknown): e is OAuthError {
  if (!(e instanceof OAuthError)) return false;
  return e.error === "invalid_scope" || saysUnknownScope(e);
}

/** True when the refusal carries LWA's "An unknown scope was requested", in any form. */
export function saysUnknownScope(e: OAuthError): boolean {
  const raw = e.response?.body;
  const rawDescription = isRecord(raw) && typeof raw["error_description"] === "string"
    ? raw["error_description"]
    : "";
  return UNKNOWN_SCOPE.test(e.errorDescription ?? "") || UNKNOWN_SCOPE.test(rawDescription) ||
    (raw === undefined && UNKNOWN_SCOPE.test(e.response?.text ?? ""));
}

/**
 * The OAuth errors that say the server refuses this client or this grant for it, whatever is
 * asked: a web-type client id (LWA wants a `client_secret`: `invalid_request`), a security
 * profile not set up for devices (`unauthorized_client`), an unknown client (`invalid_client`),
 * a grant the server does not offer it (`unsupported_grant_type`). The newer Alexa SDK treats
 * them as unrecoverable on a refresh; so does linkd, until the user pairs again.
 */
export const CLIENT_REJECTIONS: ReadonlySet<string> = new Set([
  "invalid_client",
  "unauthorized_client",
  "invalid_request",
  "unsupported_grant_type",
]);

/** True for an `OAuthError` of `CLIENT_REJECTIONS`. */
export function isClientRejection(e: unknown): e is OAuthError {
  return e instanceof OAuthError && CLIENT_REJECTIONS.has(e.error);
}

/**
 * True when the same request may succeed later with nothing changed on linkd's side, so the
 * caller should back off and send it again:
 * - `TransportError` of every kind but `aborted` (`clock_unset` too: retry after the clock moves);
 * - `ProtocolError` with a 5xx status, 408 (request timeout) or 429 (too many requests);
 * - `OAuthError` `server_error` (LWA also spells it `servererror`) or `temporarily_unavailable`
 *   (RFC 6749 names them "try later").
 *
 * Not retryable: `aborted`; any other `ProtocolError` (a malformed answer is not made better by
 * asking again at once; the caller still never unlinks for it); every other `OAuthError`,
 * including `authorization_pending` and `slow_down`: those are the poll loop's flow control
 * (keep polling at the interval; add 5 s for good), not failures to retry, and the rest
 * (`expired_token`, `access_denied`, `invalid_grant`, ...) are final answers.
 */
export function isRetryable(e: unknown): boolean {
  if (e instanceof TransportError) return e.kind !== "aborted";
  if (e instanceof ProtocolError) {
    const s = e.status;
    return s !== undefined && (s >= 500 && s <= 599 || s === 408 || s === 429);
  }
  if (e instanceof OAuthError) {
    // Busy, whatever the body calls it: 429 and 5xx are retried, as is LWA's server_error.
    if (e.status === 429 || e.status >= 500) return true;
    // LWA's own spelling, `servererror`, is what the Alexa SDK also retries.
    return e.error === "server_error" || e.error === "servererror" ||
      e.error === "temporarily_unavailable";
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the process steps

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Replaces what looks like a credential in server-written text: LWA tokens (`Atza|...`,
 * `Atzr|...`, `ANDE...` codes) and any run of 32 or more token characters.
 */
export function redact(s: string): string {
  return s
    .replace(/\bAtz[a-z]\|[^\s"',;)]*/g, "[redacted]")
    .replace(/[A-Za-z0-9\-._~+/=|%:]{32,}/g, "[redacted]");
}

/** The URL without query string, fragment or credentials, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * Turns a non-200 answer into the error it is:
 * - a 4xx with an OAuth error body is an `OAuthError`;
 * - a 4xx without one whose body says LWA's "An unknown scope was requested" (Amazon's HTML error
 *   page, or plain text) is an `OAuthError` `invalid_scope` with that description: the refusal
 *   it is, whatever it was dressed in;
 * - anything else (a 3xx, a 5xx even with an OAuth body, any other 4xx page) is a
 *   `ProtocolError` `INVALID_STATUS` carrying the status.
 * Returns when the status is 200.
 */
export function checkStatus(res: FormResponse, operation: Operation): void {
  if (res.status === 200) return;
  const body = res.body;
  const oauth = isRecord(body) && typeof body["error"] === "string" && body["error"] !== ""
    ? body["error"]
    : undefined;
  if (oauth !== undefined && res.status >= 400 && res.status <= 499) {
    const d = body as Record<string, unknown>;
    // A description of the wrong type does not hide the error code that matters (invalid_grant
    // must still unlink): it is ignored.
    const description = typeof d["error_description"] === "string"
      ? d["error_description"]
      : undefined;
    throw new OAuthError(operation, oauth, res.status, {
      ...(description !== undefined ? { description } : {}),
      response: res,
    });
  }
  if (
    oauth === undefined && res.status >= 400 && res.status <= 499 && UNKNOWN_SCOPE.test(res.text)
  ) {
    throw new OAuthError(operation, "invalid_scope", res.status, {
      description: UNKNOWN_SCOPE_DESCRIPTION,
      response: res,
    });
  }
  const server = res.status >= 500 && res.status <= 599 ? " (server error)" : "";
  const named = oauth !== undefined ? `, error ${oneLine(oauth, 100)}` : "";
  throw new ProtocolError(
    INVALID_STATUS,
    `${operation} request failed: the server answered HTTP ${res.status}${server}${named}`,
    { status: res.status, response: res },
  );
}

/** Requires a JSON object body; returns it. */
export function checkObject(res: FormResponse, operation: Operation): Record<string, unknown> {
  if (res.body === undefined) {
    const what = res.text === "" ? "is empty" : "is not JSON";
    throw new ProtocolError(INVALID_BODY, `${operation} response body ${what}`, {
      status: res.status,
      response: res,
    });
  }
  if (!isRecord(res.body)) {
    const kind = res.body === null ? "null" : Array.isArray(res.body) ? "an array" : "a " +
      typeof res.body;
    throw new ProtocolError(
      INVALID_BODY,
      `${operation} response body is ${kind}, not a JSON object`,
      { status: res.status, response: res },
    );
  }
  return res.body;
}

/** Field checks that throw `INVALID_FIELD` naming the field; values are never quoted. */
export class Fields {
  readonly #obj: Record<string, unknown>;
  readonly #operation: Operation;
  readonly #res: FormResponse;

  constructor(obj: Record<string, unknown>, operation: Operation, res: FormResponse) {
    this.#obj = obj;
    this.#operation = operation;
    this.#res = res;
  }

  fail(field: string, problem: string): never {
    throw new ProtocolError(
      INVALID_FIELD,
      `${this.#operation} response field "${field}" ${problem}`,
      { field, status: this.#res.status, response: this.#res },
    );
  }

  has(field: string): boolean {
    return Object.hasOwn(this.#obj, field) && this.#obj[field] !== undefined;
  }

  /**
   * A non-empty string of at most `max` characters. `charset` restricts the characters:
   * `printable` (no control characters; shown or spoken to a user) or `token` (visible ASCII
   * only, 0x21 to 0x7e: it goes into a form or an Authorization header).
   */
  string(field: string, max: number, charset: "printable" | "token" | "any" = "any"): string {
    if (!this.has(field)) this.fail(field, "is missing");
    const v = this.#obj[field];
    if (typeof v !== "string") this.fail(field, `is ${typeWord(v)}, not a string`);
    if (v.trim() === "") this.fail(field, "is empty");
    if (v.length > max) this.fail(field, `is longer than ${max} characters`);
    if (charset === "printable" && (hasControl(v) || /[\u2028\u2029]/.test(v))) {
      this.fail(field, "contains control characters");
    }
    if (charset === "token" && !/^[\x21-\x7e]+$/.test(v)) {
      this.fail(field, "contains characters not allowed in a token");
    }
    return v;
  }

  /** An absolute http: or https: URL of at most `max` characters, without credentials. */
  url(field: string, max: number): string {
    const v = this.string(field, max, "token");
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      this.fail(field, "is not a URL");
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") {
      this.fail(field, "is not an http or https URL");
    }
    if (u.username !== "" || u.password !== "") this.fail(field, "carries credentials");
    return v;
  }

  /**
   * A positive integer; values above `max` are an error, or clamped to `max` with `clamp`. A
   * string of decimal digits counts as its number: servers send `"expires_in": "3600"` (Azure AD
   * v1 does), and RFC 8628 section 3.5 leaves the JSON type to RFC 6749's examples.
   */
  positiveInteger(field: string, max: number, clamp: boolean): number {
    if (!this.has(field)) this.fail(field, "is missing");
    const raw = this.#obj[field];
    const v = typeof raw === "string" && /^[0-9]{1,15}$/.test(raw) ? Number(raw) : raw;
    if (typeof v !== "number") this.fail(field, `is ${typeWord(v)}, not a number`);
    if (!Number.isInteger(v)) this.fail(field, `is ${v}, not an integer`);
    if (v <= 0) this.fail(field, `is ${v}, not a positive integer`);
    if (v > max) {
      if (clamp) return max;
      this.fail(field, `is ${v}, more than ${max}`);
    }
    return v;
  }
}

function typeWord(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  const t = typeof v;
  return t === "object" ? "an object" : `a ${t}`;
}
