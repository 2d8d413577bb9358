/**
 * The token step, for both grants: polling with a code pair (`requestDeviceToken`) and the
 * refresh grant (`requestRefresh`) send the request and return the raw answer;
 * `processTokenResponse` validates it into a `TokenSet`.
 */
import type { Clock } from "../clock.ts";
import type { DialectSpec } from "./dialect.ts";
import { checkObject, checkStatus, Fields, type FormResponse, type Operation } from "./errors.ts";
import { postForm } from "./http.ts";
import type { CodePair, Fetch, TokenSet } from "./types.ts";

/** Longest access or refresh token accepted (LWA documents up to 2048 bytes). */
export const MAX_TOKEN = 4096;
/** Longest `scope` accepted. */
export const MAX_SCOPE = 4096;
/**
 * `expires_in` above this (one day) is clamped to it: linkd refreshes sooner than it had to,
 * never later.
 */
export const MAX_TOKEN_LIFETIME = 86_400;
/**
 * Seconds an access token is taken to live when the answer names no `expires_in` (RFC 6749
 * section 5.1 only RECOMMENDS it): LWA's documented hour. Refreshing on that schedule is safe
 * either way: a token that dies sooner is refreshed when a resource server refuses it
 * (`cmd/refresh`).
 */
export const DEFAULT_TOKEN_LIFETIME = 3600;

interface Common {
  readonly fetch: Fetch;
  readonly clock: Clock;
  /** The token endpoint. */
  readonly url: string;
  readonly dialect: DialectSpec;
  readonly clientId: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Bound on the answer's body (default `DEFAULT_MAX_BYTES` of http.ts). */
  readonly maxBytes?: number;
}

export interface DeviceTokenRequest extends Common {
  readonly pair: CodePair;
}

export interface RefreshRequest extends Common {
  readonly refreshToken: string;
}

function send(opts: Common, form: Record<string, string>): Promise<FormResponse> {
  return postForm(opts.fetch, opts.url, form, {
    clock: opts.clock,
    timeoutMs: opts.timeoutMs,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
  });
}

/**
 * Sends one poll of the token endpoint with the code pair (`dialect.pollForm`) and returns the
 * raw answer. Rejects as `postForm` does, or with a `TypeError` for a bad pair or client id.
 * Pacing (never faster than `pair.interval`, +5 s on `slow_down`) is the caller's.
 */
export async function requestDeviceToken(opts: DeviceTokenRequest): Promise<FormResponse> {
  return await send(opts, opts.dialect.pollForm(opts.pair, opts.clientId));
}

/**
 * Sends the refresh grant (`dialect.refreshForm`) and returns the raw answer. Rejects as
 * `postForm` does, or with a `TypeError` for an empty refresh token or client id.
 */
export async function requestRefresh(opts: RefreshRequest): Promise<FormResponse> {
  return await send(opts, opts.dialect.refreshForm(opts.refreshToken, opts.clientId));
}

/**
 * Validates a token answer, in this order:
 * 1. status 200; a 4xx (400 and 401 in practice) with `{error, error_description?}` is an
 *    `OAuthError` carrying any error string (`authorization_pending`, `slow_down`,
 *    `expired_token`, `access_denied`, `invalid_grant`, `invalid_client`, ...); any other status,
 *    5xx included, is `ProtocolError` `INVALID_STATUS` with `status` (5xx: retryable);
 * 2. a JSON object body, else `ProtocolError` `INVALID_BODY`;
 * 3. `access_token`: non-empty, at most 4096 characters of visible ASCII (it goes into an
 *    Authorization header);
 * 4. `token_type`: "bearer" in any case;
 * 5. `expires_in`: a positive integer, or a string of digits; above one day clamped to one
 *    day; absent, `DEFAULT_TOKEN_LIFETIME` (RFC 6749 only recommends it);
 * 6. `refresh_token`: required for the `device` grant; optional for `refresh` (absent means
 *    the old one stays valid; present, it is checked like `access_token`);
 * 7. `scope`: optional; when present a string without control characters, at most 4096.
 * Every field failure is `ProtocolError` `INVALID_FIELD` naming the field. Returns a frozen
 * `TokenSet`.
 */
export function processTokenResponse(res: FormResponse, kind: "device" | "refresh"): TokenSet {
  const operation: Operation = kind === "device" ? "Token" : "Refresh";
  checkStatus(res, operation);
  const f = new Fields(checkObject(res, operation), operation, res);
  const accessToken = f.string("access_token", MAX_TOKEN, "token");
  const tokenType = f.string("token_type", 64, "token");
  if (tokenType.toLowerCase() !== "bearer") f.fail("token_type", `is not "bearer"`);
  const expiresIn = f.has("expires_in")
    ? f.positiveInteger("expires_in", MAX_TOKEN_LIFETIME, true)
    : DEFAULT_TOKEN_LIFETIME;
  const refreshToken = kind === "device" || f.has("refresh_token")
    ? f.string("refresh_token", MAX_TOKEN, "token")
    : undefined;
  let scope: string | undefined;
  if (f.has("scope")) {
    scope = f.string("scope", MAX_SCOPE, "printable");
  }
  return Object.freeze({
    accessToken,
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    tokenType,
    expiresIn,
    ...(scope !== undefined ? { scope } : {}),
  });
}
