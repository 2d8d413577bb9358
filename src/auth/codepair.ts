/**
 * The code-pair step (LWA "create codepair", RFC 8628 device authorization request): one
 * function sends it and returns the raw answer, one validates that answer into a `CodePair`.
 */
import type { Clock } from "../clock.ts";
import type { DialectSpec } from "./dialect.ts";
import { invalidArgument } from "../text.ts";
import { checkObject, checkStatus, Fields, type FormResponse } from "./errors.ts";
import { postForm } from "./http.ts";
import type { CodePair, DeviceIdentity, Fetch } from "./types.ts";

/** Longest `user_code` accepted (LWA sends about 6 letters, RFC 8628 suggests 8). */
export const MAX_USER_CODE = 32;
/** Longest `device_code` accepted. */
export const MAX_DEVICE_CODE = 2048;
/** Longest verification URI accepted. */
export const MAX_URI = 2048;
/** `expires_in` above this (one day) is clamped to it: linkd stops polling sooner, never later. */
export const MAX_CODE_LIFETIME = 86_400;
/**
 * `interval` above this (one hour) is refused: clamping would poll faster than the server
 * allows, and a code the user must wait an hour on is no use.
 */
export const MAX_INTERVAL = 3600;

/**
 * The `Accept-Language` values the Alexa Auto SDK sends with a code-pair request; LWA words its
 * pages in that language. Anything else goes as `en-US`, as the SDK does.
 */
export const ACCEPT_LANGUAGES: readonly string[] = Object.freeze([
  "de-DE",
  "en-GB",
  "en-US",
  "es-ES",
  "fr-FR",
  "it-IT",
  "ja-JP",
  "pt-BR",
]);

/**
 * The `Accept-Language` for a speaker's language: the listed tag that matches it (case and `_`
 * ignored: `de_de` is `de-DE`), else the listed tag of its language (`de-AT` and `de` are
 * `de-DE`; English without a listed region, `en-AU`, is `en-US`, the SDK's default), else
 * `en-US` (`nl-NL`).
 */
export function acceptLanguage(tag: string): string {
  const norm = tag.replace(/_/g, "-").toLowerCase();
  const exact = ACCEPT_LANGUAGES.find((t) => t.toLowerCase() === norm);
  if (exact !== undefined) return exact;
  const language = norm.split("-")[0];
  if (language === "en") return "en-US";
  return ACCEPT_LANGUAGES.find((t) => t.slice(0, 2).toLowerCase() === language) ?? "en-US";
}

export interface CodePairRequest {
  readonly fetch: Fetch;
  readonly clock: Clock;
  /** The code-pair (LWA) or device authorization (RFC 8628) endpoint. */
  readonly url: string;
  readonly dialect: DialectSpec;
  readonly identity: DeviceIdentity;
  readonly scopes: readonly string[];
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /**
   * The speaker's language (BCP 47): sent as `Accept-Language`, mapped onto the Alexa SDK's list
   * by `acceptLanguage` (`de-AT` goes as `de-DE`, `nl-NL` as `en-US`).
   */
  readonly lang?: string;
  /** Bound on the answer's body (default `DEFAULT_MAX_BYTES` of http.ts). */
  readonly maxBytes?: number;
}

/**
 * Sends the code-pair request and returns the raw answer. Rejects as `postForm` does, or with a
 * `TypeError` (`ERR_INVALID_ARG_VALUE`) for a bad identity, scope list, `lang` or option.
 */
export async function requestCodePair(opts: CodePairRequest): Promise<FormResponse> {
  const form = opts.dialect.codePairForm(opts.identity, opts.scopes);
  const headers: Record<string, string> = {};
  if (opts.lang !== undefined) {
    if (!/^[A-Za-z0-9-]{1,35}$/.test(opts.lang)) {
      throw invalidArgument("requestCodePair(): lang must be a BCP 47 language tag");
    }
    headers["accept-language"] = acceptLanguage(opts.lang);
  }
  return await postForm(opts.fetch, opts.url, form, {
    clock: opts.clock,
    timeoutMs: opts.timeoutMs,
    headers,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
  });
}

/**
 * Validates a code-pair answer, in this order: status 200 (a 4xx with an OAuth error body is an
 * `OAuthError`, anything else `ProtocolError` `INVALID_STATUS`), a JSON object body
 * (`INVALID_BODY`), then each field (`INVALID_FIELD` naming it):
 * - `device_code`: non-empty, at most 2048 characters, visible ASCII (it goes back in a form);
 * - `user_code`: non-empty, at most 32 characters, no control characters (it is shown and spoken);
 * - `verification_uri`: an http(s) URL of at most 2048 characters;
 * - `verification_uri_complete` (rfc8628 only): the same, when present. LWA documents no such
 *   field, so for `lwa` it is ignored, neither checked nor returned: what the user is shown
 *   follows the dialect, not an unknown field;
 * - `expires_in`: a positive integer (0 refused); above one day it is clamped to one day;
 * - `interval`: a positive integer up to 3600 when present, else `dialect.defaultInterval` (5).
 * Returns a frozen `CodePair`.
 */
export function processCodePairResponse(dialect: DialectSpec, res: FormResponse): CodePair {
  checkStatus(res, "Code-pair");
  const f = new Fields(checkObject(res, "Code-pair"), "Code-pair", res);
  const deviceCode = f.string("device_code", MAX_DEVICE_CODE, "token");
  const userCode = f.string("user_code", MAX_USER_CODE, "printable");
  const verificationUri = f.url("verification_uri", MAX_URI);
  const verificationUriComplete = dialect.name === "rfc8628" && f.has("verification_uri_complete")
    ? f.url("verification_uri_complete", MAX_URI)
    : undefined;
  const expiresIn = f.positiveInteger("expires_in", MAX_CODE_LIFETIME, true);
  const interval = f.has("interval")
    ? f.positiveInteger("interval", MAX_INTERVAL, false)
    : dialect.defaultInterval;
  return Object.freeze({
    deviceCode,
    userCode,
    verificationUri,
    ...(verificationUriComplete !== undefined ? { verificationUriComplete } : {}),
    expiresIn,
    interval,
  });
}
