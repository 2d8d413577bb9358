import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { DIALECTS } from "./dialect.ts";
import {
  type FormResponse,
  INVALID_BODY,
  INVALID_FIELD,
  INVALID_STATUS,
  isRetryable,
  OAuthError,
  ProtocolError,
  TransportError,
} from "./errors.ts";
import {
  DEFAULT_TOKEN_LIFETIME,
  MAX_TOKEN_LIFETIME,
  processTokenResponse,
  requestDeviceToken,
  requestRefresh,
} from "./token.ts";
import type { CodePair, Fetch } from "./types.ts";

const ACCESS = "Atza|IwEBIAccessTokenSecret0123456789abcdefghijklmnopqrstuvwxyz";
const REFRESH = "Atzr|IwEBIRefreshTokenSecret0123456789abcdefghijklmnopqrstuvwxyz";
const DEVICE_CODE = "DeviceCodeSecret-0d9c8b7a-6f5e-4d3c-2b1a-00ff00ff00ff";
const SECRETS = [ACCESS, REFRESH, DEVICE_CODE, "IwEBIAccessTokenSecret", "IwEBIRefreshTokenSecret"];
const URL_ = "https://api.amazon.com/auth/O2/token";

const PAIR: CodePair = {
  deviceCode: DEVICE_CODE,
  userCode: "QWERTY",
  verificationUri: "https://amazon.com/us/code",
  expiresIn: 600,
  interval: 5,
};

const GOOD = {
  access_token: ACCESS,
  refresh_token: REFRESH,
  token_type: "bearer",
  expires_in: 3600,
};

function res(body: unknown, status = 200): FormResponse {
  return { status, body, text: body === undefined ? "" : JSON.stringify(body) };
}

function recorder(answer: () => Response) {
  const sent: { url: string; form: Record<string, string> }[] = [];
  const fetch: Fetch = (input, init = {}) => {
    sent.push({
      url: String(input),
      form: Object.fromEntries(new URLSearchParams(String(init.body))),
    });
    return Promise.resolve(answer());
  };
  return { fetch, sent };
}

/** Every way an error can be printed, logged or serialised. */
function renderings(e: Error): string[] {
  return [e.message, String(e), e.stack ?? "", JSON.stringify(e), Deno.inspect(e), `${e}`];
}

function assertNoSecret(e: Error): void {
  for (const text of renderings(e)) {
    for (const s of SECRETS) assert.not.ok(text.includes(s), `a secret leaked into: ${text}`);
  }
}

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  assert.unreachable("expected an error");
  return new Error("unreachable");
}

// ---------------------------------------------------------------------------------------------
// The requests

test("requestDeviceToken() polls LWA with grant_type=device_code, device_code, user_code only", async () => {
  const { fetch, sent } = recorder(() => Response.json(GOOD));
  const r = await requestDeviceToken({
    fetch,
    clock: new FakeClock(),
    url: URL_,
    dialect: DIALECTS.lwa,
    pair: PAIR,
    clientId: "cid",
    timeoutMs: 60_000,
  });
  assert.is(sent[0]!.url, URL_);
  assert.equal(sent[0]!.form, {
    grant_type: "device_code",
    device_code: DEVICE_CODE,
    user_code: "QWERTY",
  });
  assert.equal(processTokenResponse(r, "device"), {
    accessToken: ACCESS,
    refreshToken: REFRESH,
    tokenType: "bearer",
    expiresIn: 3600,
  });
});

test("requestDeviceToken() polls RFC 8628 with the URN grant and client_id", async () => {
  const { fetch, sent } = recorder(() => Response.json(GOOD));
  await requestDeviceToken({
    fetch,
    clock: new FakeClock(),
    url: "https://idp.example/token",
    dialect: DIALECTS.rfc8628,
    pair: PAIR,
    clientId: "cid",
    timeoutMs: 60_000,
  });
  assert.equal(sent[0]!.form, {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: DEVICE_CODE,
    client_id: "cid",
  });
});

test("requestRefresh() sends grant_type=refresh_token, refresh_token, client_id", async () => {
  for (const dialect of [DIALECTS.lwa, DIALECTS.rfc8628]) {
    const { fetch, sent } = recorder(() => Response.json({ ...GOOD, refresh_token: undefined }));
    const r = await requestRefresh({
      fetch,
      clock: new FakeClock(),
      url: URL_,
      dialect,
      refreshToken: REFRESH,
      clientId: "cid",
      timeoutMs: 60_000,
    });
    assert.equal(sent[0]!.form, {
      grant_type: "refresh_token",
      refresh_token: REFRESH,
      client_id: "cid",
    });
    const set = processTokenResponse(r, "refresh");
    assert.not.ok("refreshToken" in set, "absent: keep the old one");
  }
});

test("requestRefresh() is cancelled by its signal and a timeout error carries no secret", async () => {
  const clock = new FakeClock();
  const ac = new AbortController();
  const never: Fetch = () => new Promise<Response>(() => {});
  const common = {
    fetch: never,
    clock,
    url: URL_,
    dialect: DIALECTS.lwa,
    refreshToken: REFRESH,
    clientId: "cid",
    timeoutMs: 30_000,
  };
  const aborted = requestRefresh({ ...common, signal: ac.signal }).catch((e) => e);
  ac.abort();
  const a = await aborted;
  assert.instance(a, TransportError);
  assert.is((a as TransportError).kind, "aborted");
  assert.not.ok(isRetryable(a));
  assertNoSecret(a as Error);

  const timed = requestRefresh(common).catch((e) => e);
  await clock.advance(30_000);
  const t = await timed;
  assert.is((t as TransportError).kind, "timeout");
  assertNoSecret(t as Error);
});

// ---------------------------------------------------------------------------------------------
// processTokenResponse()

test("processTokenResponse() accepts any case of bearer and an optional scope", () => {
  const set = processTokenResponse(
    res({ ...GOOD, token_type: "Bearer", scope: "alexa:all profile" }),
    "device",
  );
  assert.equal(set, {
    accessToken: ACCESS,
    refreshToken: REFRESH,
    tokenType: "Bearer",
    expiresIn: 3600,
    scope: "alexa:all profile",
  });
  assert.ok(Object.isFrozen(set));
  assert.is(
    processTokenResponse(res({ ...GOOD, token_type: "BEARER" }), "refresh").tokenType,
    "BEARER",
  );
});

test("processTokenResponse() keeps a rotated refresh token on refresh", () => {
  const set = processTokenResponse(res({ ...GOOD, refresh_token: "Atzr|new" }), "refresh");
  assert.is(set.refreshToken, "Atzr|new");
});

test("processTokenResponse() takes expires_in as digits, and an hour when it is missing", () => {
  const missing: Record<string, unknown> = { ...GOOD };
  delete missing.expires_in;
  for (const kind of ["device", "refresh"] as const) {
    assert.is(processTokenResponse(res(missing), kind).expiresIn, DEFAULT_TOKEN_LIFETIME);
    assert.is(processTokenResponse(res({ ...GOOD, expires_in: "1800" }), kind).expiresIn, 1800);
  }
  assert.is(DEFAULT_TOKEN_LIFETIME, 3600);
});

test("processTokenResponse() clamps expires_in to a day", () => {
  const set = processTokenResponse(res({ ...GOOD, expires_in: 31_536_000 }), "device");
  assert.is(set.expiresIn, MAX_TOKEN_LIFETIME);
});

test("processTokenResponse() checks each field, names it, and never quotes a value", () => {
  const cases: Array<["device" | "refresh", Record<string, unknown>, string, string]> = [
    ["device", { access_token: undefined }, "access_token", "is missing"],
    ["device", { access_token: "" }, "access_token", "is empty"],
    ["device", { access_token: 7 }, "access_token", "is a number, not a string"],
    ["device", { access_token: "A".repeat(4097) }, "access_token", "is longer than 4096"],
    ["device", { access_token: `${ACCESS}\r\nX: y` }, "access_token", "contains characters"],
    ["device", { access_token: `${ACCESS} ` }, "access_token", "contains characters"],
    ["device", { token_type: undefined }, "token_type", "is missing"],
    ["device", { token_type: "mac" }, "token_type", 'is not "bearer"'],
    ["device", { token_type: ACCESS }, "token_type", 'is not "bearer"'],
    ["device", { expires_in: 0 }, "expires_in", "is 0, not a positive integer"],
    ["device", { expires_in: "3600s" }, "expires_in", "is a string, not a number"],
    ["device", { expires_in: "" }, "expires_in", "is a string, not a number"],
    ["device", { expires_in: 3600.5 }, "expires_in", "is 3600.5, not an integer"],
    ["device", { refresh_token: undefined }, "refresh_token", "is missing"],
    ["device", { refresh_token: "" }, "refresh_token", "is empty"],
    ["refresh", { refresh_token: "" }, "refresh_token", "is empty"],
    ["refresh", { refresh_token: 1 }, "refresh_token", "is a number, not a string"],
    ["refresh", { refresh_token: "R".repeat(4097) }, "refresh_token", "is longer than 4096"],
    ["device", { scope: 5 }, "scope", "is a number, not a string"],
    ["device", { scope: "a\u0000b" }, "scope", "contains control characters"],
  ];
  for (const [kind, patch, field, problem] of cases) {
    const body: Record<string, unknown> = { ...GOOD, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete body[k];
    const e = catchError(() => processTokenResponse(res(body), kind));
    assert.instance(e, ProtocolError, `${field}: ${e.message}`);
    const p = e as ProtocolError;
    assert.is(p.code, INVALID_FIELD);
    assert.is(p.field, field);
    const what = kind === "device" ? "Token" : "Refresh";
    assert.ok(p.message.startsWith(`${what} response field "${field}" ${problem}`), p.message);
    assert.not.ok(isRetryable(p));
    assertNoSecret(p);
    assert.is(p.response?.text, JSON.stringify(body), "the raw answer stays reachable");
  }
});

test("processTokenResponse() names a body that is not a JSON object", () => {
  const cases: Array<[FormResponse, string]> = [
    [
      { status: 200, body: undefined, text: `access_token=${ACCESS}` },
      "Token response body is not JSON",
    ],
    [{ status: 200, body: undefined, text: "" }, "Token response body is empty"],
    [res([ACCESS]), "Token response body is an array, not a JSON object"],
    [res(42), "Token response body is a number, not a JSON object"],
  ];
  for (const [r, msg] of cases) {
    const e = catchError(() => processTokenResponse(r, "device")) as ProtocolError;
    assert.instance(e, ProtocolError);
    assert.is(e.code, INVALID_BODY);
    assert.is(e.message, msg);
    assertNoSecret(e);
  }
});

test("processTokenResponse() turns every 400/401 OAuth error into OAuthError", () => {
  const codes = [
    "authorization_pending",
    "slow_down",
    "expired_token",
    "access_denied",
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "invalid_request",
    "unsupported_grant_type",
    "invalid_scope",
    "some_future_error",
  ];
  for (const code of codes) {
    for (const status of [400, 401]) {
      const e = catchError(() =>
        processTokenResponse(res({ error: code, error_description: "Explained" }, status), "device")
      );
      assert.instance(e, OAuthError, e.message);
      const o = e as OAuthError;
      assert.is(o.error, code);
      assert.is(o.status, status);
      assert.is(o.errorDescription, "Explained");
      assert.is(o.message, `Token request refused: ${code} (Explained)`);
      assert.not.ok(isRetryable(o), code);
    }
  }
  const bare = catchError(() =>
    processTokenResponse(res({ error: "invalid_grant" }, 400), "refresh")
  ) as OAuthError;
  assert.is(bare.message, "Refresh request refused: invalid_grant");
  assert.is(bare.errorDescription, undefined);
  const oddDescription = catchError(() =>
    processTokenResponse(res({ error: "invalid_grant", error_description: 5 }, 400), "refresh")
  ) as OAuthError;
  assert.is(oddDescription.error, "invalid_grant", "a bad description does not hide the code");
});

test("processTokenResponse() calls a 5xx INVALID_STATUS, retryable, even with an OAuth body", () => {
  for (const r of [res(undefined, 500), res({ error: "server_error" }, 503), res(undefined, 429)]) {
    const e = catchError(() => processTokenResponse(r, "refresh")) as ProtocolError;
    assert.instance(e, ProtocolError);
    assert.is(e.code, INVALID_STATUS);
    assert.is(e.status, r.status);
    assert.ok(isRetryable(e), e.message);
  }
  const e = catchError(() => processTokenResponse(res(GOOD, 302), "device")) as ProtocolError;
  assert.is(e.code, INVALID_STATUS);
  assert.not.ok(isRetryable(e));
  assertNoSecret(e);
});

test("processTokenResponse() errors keep secrets out of every rendering", () => {
  const errors: Error[] = [
    // A valid-looking answer with one bad field: the tokens are in the body.
    catchError(() => processTokenResponse(res({ ...GOOD, token_type: "mac" }), "device")),
    catchError(() => processTokenResponse(res({ ...GOOD, expires_in: 0 }), "refresh")),
    // A server that echoes secrets in its error description.
    catchError(() =>
      processTokenResponse(
        res({
          error: "invalid_grant",
          error_description: `refresh token ${REFRESH} for device ${DEVICE_CODE} was revoked`,
        }, 400),
        "refresh",
      )
    ),
    catchError(() =>
      processTokenResponse(res({ error: "server_error", access_token: ACCESS }, 500), "device")
    ),
  ];
  for (const e of errors) {
    assertNoSecret(e);
    assert.not.ok(Object.keys(e).includes("response"), "the response is not enumerable");
    assert.ok((e as ProtocolError).response !== undefined, "but it is attached");
  }
  assert.is(
    errors[2]!.message,
    "Refresh request refused: invalid_grant (refresh token [redacted] for device [redacted] was revoked)",
  );
});

test.run();
