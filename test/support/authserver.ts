/**
 * Helpers for the tests of the local authorization server (dev/authserver/): form posts and the
 * two dialects' flows.
 */

import * as assert from "uvu/assert";
import { FakeClock } from "./fake_clock.ts";
import {
  type AuthServer,
  type AuthServerOptions,
  startAuthServer,
} from "../../dev/authserver/server.ts";

export const CLIENT = "amzn1.application-oa2-client.test";
export const PRODUCT_ID = "linkd_speaker";
export const SERIAL = "SN-0001";
export const SCOPE_DATA = JSON.stringify({
  "alexa:all": {
    productID: PRODUCT_ID,
    productInstanceAttributes: { deviceSerialNumber: SERIAL },
  },
});

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** POSTs `fields` form-encoded and reads a JSON answer (the test fails if it is not JSON). */
export async function post(
  url: string,
  fields: Record<string, string>,
  init: RequestInit = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
    ...init,
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`Answer of ${url} is not JSON (status ${res.status}): ${text.slice(0, 200)}`);
  }
  return { status: res.status, body, headers: res.headers };
}

/** Expects an OAuth error answer: status, JSON content type, `error` and a description. */
export function assertError(a: Answer, error: string, status = 400): void {
  assert.is(a.status, status, JSON.stringify(a.body));
  assert.is(a.body["error"], error, JSON.stringify(a.body));
  assert.type(a.body["error_description"], "string");
  assert.match(a.headers.get("content-type") ?? "", "application/json");
}

export function lwaCodepair(
  s: AuthServer,
  fields: Record<string, string> = {},
  url = s.lwa.codepairUrl,
): Promise<Answer> {
  return post(url, {
    response_type: "device_code",
    client_id: CLIENT,
    scope: "alexa:all",
    scope_data: SCOPE_DATA,
    ...fields,
  });
}

export function lwaPoll(
  s: AuthServer,
  pair: Answer,
  fields: Record<string, string> = {},
  url = s.lwa.tokenUrl,
): Promise<Answer> {
  return post(url, {
    grant_type: "device_code",
    device_code: pair.body["device_code"] as string,
    user_code: pair.body["user_code"] as string,
    ...fields,
  });
}

export function rfcCodepair(s: AuthServer, fields: Record<string, string> = {}): Promise<Answer> {
  return post(s.rfc8628.codepairUrl, { client_id: CLIENT, scope: "alexa:all", ...fields });
}

export function rfcPoll(
  s: AuthServer,
  pair: Answer,
  fields: Record<string, string> = {},
): Promise<Answer> {
  return post(s.rfc8628.tokenUrl, {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: pair.body["device_code"] as string,
    client_id: CLIENT,
    ...fields,
  });
}

export function refresh(
  url: string,
  refreshToken: string,
  fields: Record<string, string> = {},
): Promise<Answer> {
  return post(url, {
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    client_id: CLIENT,
    ...fields,
  });
}

/** Runs `fn` and fails if it takes longer than `ms`. */
export async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  const took = performance.now() - t0;
  assert.ok(took < ms, `${what} took ${took.toFixed(0)} ms, expected under ${ms} ms`);
  return out;
}

/** Runs `fn` against a fresh server on fake time with one device client, CLIENT; closes it. */
export async function withServer(
  fn: (s: AuthServer, clock: FakeClock) => Promise<void>,
  options: AuthServerOptions = {},
): Promise<void> {
  const clock = new FakeClock();
  const s = startAuthServer({ clock, clients: [{ clientId: CLIENT }], ...options });
  try {
    await fn(s, clock);
  } finally {
    await s.close();
  }
}
