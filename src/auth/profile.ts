/**
 * The profile step: who the linked account is. With `profile:user_id` granted, LWA answers
 * `GET https://api.amazon.com/user/profile` (bearer access token) with `{"user_id": ...}`; the
 * newer Alexa SDK reads it once after linking and wipes the previous owner's data when the
 * account changed. One function sends the request, one validates the answer; the account id is
 * never shown: the link controller publishes only a keyed fingerprint of it.
 */
import type { Clock } from "../clock.ts";
import { checkObject, checkStatus, Fields, type FormResponse } from "./errors.ts";
import { getJson } from "./http.ts";
import type { Fetch } from "./types.ts";

/** The scope that lets linkd read the account's id (and nothing else of the profile). */
export const PROFILE_USER_ID = "profile:user_id";
/** The broader profile scope (name and email too); it also names the user id. */
export const PROFILE = "profile";
/** LWA's profile path, under the region's API host (the token endpoint's host). */
export const LWA_PROFILE_PATH = "/user/profile";
/** Longest `user_id` accepted (`amzn1.account.` and 28 characters in practice). */
export const MAX_USER_ID = 256;

export interface ProfileRequest {
  readonly fetch: Fetch;
  readonly clock: Clock;
  /** The profile endpoint. */
  readonly url: string;
  readonly accessToken: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** True when `scopes` let linkd read the account's id. */
export function canReadProfile(scopes: readonly string[]): boolean {
  return scopes.includes(PROFILE_USER_ID) || scopes.includes(PROFILE);
}

/** The profile endpoint of the authorization server whose token endpoint is `tokenUrl`. */
export function profileUrlFor(tokenUrl: string): string {
  return new URL(LWA_PROFILE_PATH, tokenUrl).href;
}

/** Sends the profile request with the bearer token; returns the raw answer. */
export async function requestProfile(opts: ProfileRequest): Promise<FormResponse> {
  return await getJson(opts.fetch, opts.url, {
    clock: opts.clock,
    timeoutMs: opts.timeoutMs,
    headers: { authorization: `Bearer ${opts.accessToken}` },
    maxBytes: 16 * 1024,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
}

/**
 * Validates a profile answer: status 200 (a 4xx OAuth body, `invalid_token` or
 * `insufficient_scope`, is an `OAuthError`), a JSON object, `user_id` a non-empty string of at
 * most 256 visible ASCII characters. Returns the user id.
 */
export function processProfileResponse(res: FormResponse): string {
  checkStatus(res, "Profile");
  const f = new Fields(checkObject(res, "Profile"), "Profile", res);
  return f.string("user_id", MAX_USER_ID, "token");
}
