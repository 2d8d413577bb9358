import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import {
  ACCEPT_LANGUAGES,
  acceptLanguage,
  MAX_CODE_LIFETIME,
  MAX_INTERVAL,
  processCodePairResponse,
  requestCodePair,
} from "./codepair.ts";
import { DIALECTS } from "./dialect.ts";
import { ERR_INVALID_ARG_VALUE } from "../text.ts";
import {
  type FormResponse,
  INVALID_BODY,
  INVALID_FIELD,
  INVALID_STATUS,
  isRetryable,
  isScopeRefusal,
  OAuthError,
  ProtocolError,
  TransportError,
} from "./errors.ts";
import type { DeviceIdentity, Fetch } from "./types.ts";

const ID: DeviceIdentity = { clientId: "cid-1", productId: "prod_1", serial: "SN1" };
const URL_ = "https://api.amazon.com/auth/O2/create/codepair";
const DEVICE_CODE = "DEVICECODE-secret-7f3a9c1e-5b2d-4e8f-a6c0-123456789abc";

const GOOD = {
  user_code: "ABCDEF",
  device_code: DEVICE_CODE,
  verification_uri: "https://amazon.com/us/code",
  expires_in: 600,
  interval: 5,
};

function res(body: unknown, status = 200): FormResponse {
  return { status, body, text: body === undefined ? "" : JSON.stringify(body) };
}

function recorder(answer: () => Response) {
  const sent: { url: string; headers: Headers; form: Record<string, string> }[] = [];
  const fetch: Fetch = (input, init = {}) => {
    sent.push({
      url: String(input),
      headers: new Headers(init.headers),
      form: Object.fromEntries(new URLSearchParams(String(init.body))),
    });
    return Promise.resolve(answer());
  };
  return { fetch, sent };
}

/** Runs `fn`, requires a ProtocolError with `code` (and `field`), returns its message. */
function protocol(fn: () => unknown, code: string, field?: string): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    assert.is(e.code, code, e.message);
    if (field !== undefined) {
      assert.is(e.field, field, e.message);
      assert.ok(e.message.includes(`field "${field}"`), e.message);
    }
    for (const s of [e.message, String(e), e.stack ?? "", JSON.stringify(e), Deno.inspect(e)]) {
      assert.not.ok(s.includes(DEVICE_CODE), `the device code leaked: ${s}`);
    }
    return e.message;
  }
  assert.unreachable(`expected ProtocolError ${code}`);
  return "";
}

// ---------------------------------------------------------------------------------------------
// requestCodePair()

test("requestCodePair() sends the LWA form with scope_data and Accept-Language", async () => {
  const { fetch, sent } = recorder(() => Response.json(GOOD));
  const r = await requestCodePair({
    fetch,
    clock: new FakeClock(),
    url: URL_,
    dialect: DIALECTS.lwa,
    identity: ID,
    scopes: ["alexa:all"],
    timeoutMs: 60_000,
    lang: "en-US",
  });
  assert.is(r.status, 200);
  assert.is(sent[0]!.url, URL_);
  assert.is(sent[0]!.headers.get("accept-language"), "en-US");
  assert.equal(sent[0]!.form, {
    response_type: "device_code",
    client_id: "cid-1",
    scope: "alexa:all",
    scope_data:
      '{"alexa:all":{"productID":"prod_1","productInstanceAttributes":{"deviceSerialNumber":"SN1"}}}',
  });
  const pair = processCodePairResponse(DIALECTS.lwa, r);
  assert.is(pair.userCode, "ABCDEF");
});

test("requestCodePair() sends the RFC 8628 form, no Accept-Language unless asked", async () => {
  const { fetch, sent } = recorder(() => Response.json(GOOD));
  await requestCodePair({
    fetch,
    clock: new FakeClock(),
    url: "https://idp.example/device",
    dialect: DIALECTS.rfc8628,
    identity: ID,
    scopes: ["openid", "offline_access"],
    timeoutMs: 60_000,
  });
  assert.equal(sent[0]!.form, { client_id: "cid-1", scope: "openid offline_access" });
  assert.is(sent[0]!.headers.get("accept-language"), null);
});

test("requestCodePair() rejects a bad lang or scope list before sending", async () => {
  const { fetch, sent } = recorder(() => Response.json(GOOD));
  for (const [lang, scopes] of [["en US\r\nX: y", ["alexa:all"]], ["en-US", []]] as const) {
    try {
      await requestCodePair({
        fetch,
        clock: new FakeClock(),
        url: URL_,
        dialect: DIALECTS.lwa,
        identity: ID,
        scopes,
        timeoutMs: 1000,
        lang,
      });
      assert.unreachable("expected a TypeError");
    } catch (e) {
      assert.instance(e, TypeError);
      assert.is((e as { code?: string }).code, ERR_INVALID_ARG_VALUE);
    }
  }
  assert.is(sent.length, 0);
});

test("requestCodePair() times out on the clock like every request", async () => {
  const clock = new FakeClock();
  const p = requestCodePair({
    fetch: () => new Promise<Response>(() => {}),
    clock,
    url: URL_,
    dialect: DIALECTS.lwa,
    identity: ID,
    scopes: ["alexa:all"],
    timeoutMs: 60_000,
  }).catch((e) => e);
  await clock.advance(60_000);
  const e = await p;
  assert.instance(e, TransportError);
  assert.is((e as TransportError).kind, "timeout");
  assert.ok(isRetryable(e));
});

// ---------------------------------------------------------------------------------------------
// processCodePairResponse()

test("processCodePairResponse() returns a frozen CodePair", () => {
  const pair = processCodePairResponse(DIALECTS.lwa, res(GOOD));
  assert.equal(pair, {
    deviceCode: DEVICE_CODE,
    userCode: "ABCDEF",
    verificationUri: "https://amazon.com/us/code",
    expiresIn: 600,
    interval: 5,
  });
  assert.ok(Object.isFrozen(pair));
});

test("processCodePairResponse() defaults the interval to 5 for both dialects", () => {
  const { interval: _, ...noInterval } = GOOD;
  assert.is(processCodePairResponse(DIALECTS.lwa, res(noInterval)).interval, 5);
  assert.is(processCodePairResponse(DIALECTS.rfc8628, res(noInterval)).interval, 5);
  assert.is(processCodePairResponse(DIALECTS.lwa, res({ ...GOOD, interval: 30 })).interval, 30);
});

test("processCodePairResponse() keeps verification_uri_complete for rfc8628 only", () => {
  const body = { ...GOOD, verification_uri_complete: "https://idp.example/d?user_code=ABCDEF" };
  const rfc = processCodePairResponse(DIALECTS.rfc8628, res(body));
  assert.is(rfc.verificationUriComplete, "https://idp.example/d?user_code=ABCDEF");
  const lwa = processCodePairResponse(DIALECTS.lwa, res(body));
  assert.not.ok("verificationUriComplete" in lwa, "LWA has no such field: ignored");
  // Ignored means not checked either, for LWA; checked for RFC 8628.
  const bad = { ...GOOD, verification_uri_complete: "javascript:alert(1)" };
  assert.not.ok("verificationUriComplete" in processCodePairResponse(DIALECTS.lwa, res(bad)));
  protocol(
    () => processCodePairResponse(DIALECTS.rfc8628, res(bad)),
    INVALID_FIELD,
    "verification_uri_complete",
  );
});

test("processCodePairResponse() clamps expires_in to a day, refuses an interval over an hour", () => {
  const long = processCodePairResponse(DIALECTS.lwa, res({ ...GOOD, expires_in: 10 ** 9 }));
  assert.is(long.expiresIn, MAX_CODE_LIFETIME);
  assert.is(MAX_CODE_LIFETIME, 86_400);
  const ok = processCodePairResponse(DIALECTS.lwa, res({ ...GOOD, interval: MAX_INTERVAL }));
  assert.is(ok.interval, 3600);
  const msg = protocol(
    () => processCodePairResponse(DIALECTS.lwa, res({ ...GOOD, interval: 3601 })),
    INVALID_FIELD,
    "interval",
  );
  assert.is(msg, 'Code-pair response field "interval" is 3601, more than 3600');
});

test("processCodePairResponse() checks each field and names it", () => {
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ device_code: undefined }, "device_code", "is missing"],
    [{ device_code: "" }, "device_code", "is empty"],
    [{ device_code: 42 }, "device_code", "is a number, not a string"],
    [{ device_code: "x".repeat(2049) }, "device_code", "is longer than 2048 characters"],
    [{ device_code: "with space" }, "device_code", "contains characters not allowed"],
    [{ user_code: undefined }, "user_code", "is missing"],
    [{ user_code: "" }, "user_code", "is empty"],
    [{ user_code: "   " }, "user_code", "is empty"],
    [{ user_code: null }, "user_code", "is null, not a string"],
    [{ user_code: "A".repeat(33) }, "user_code", "is longer than 32 characters"],
    [{ user_code: "AB\nCD" }, "user_code", "contains control characters"],
    [{ verification_uri: undefined }, "verification_uri", "is missing"],
    [{ verification_uri: "" }, "verification_uri", "is empty"],
    [{ verification_uri: "amazon.com/us/code" }, "verification_uri", "is not a URL"],
    [{ verification_uri: "ftp://amazon.com/code" }, "verification_uri", "is not an http or"],
    [{ verification_uri: "https://u:p@amazon.com/" }, "verification_uri", "carries credentials"],
    [
      { verification_uri: `https://amazon.com/${"a".repeat(2048)}` },
      "verification_uri",
      "is longer than 2048",
    ],
    [{ expires_in: undefined }, "expires_in", "is missing"],
    [{ expires_in: 0 }, "expires_in", "is 0, not a positive integer"],
    [{ expires_in: -5 }, "expires_in", "is -5, not a positive integer"],
    [{ expires_in: 1.5 }, "expires_in", "is 1.5, not an integer"],
    [{ expires_in: "600 s" }, "expires_in", "is a string, not a number"],
    [{ interval: "-5" }, "interval", "is a string, not a number"],
    [{ interval: 0 }, "interval", "is 0, not a positive integer"],
    [{ interval: null }, "interval", "is null, not a number"],
    [{ interval: [5] }, "interval", "is an array, not a number"],
  ];
  for (const [patch, field, problem] of cases) {
    const body: Record<string, unknown> = { ...GOOD, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete body[k];
    const msg = protocol(
      () => processCodePairResponse(DIALECTS.rfc8628, res(body)),
      INVALID_FIELD,
      field,
    );
    assert.ok(msg.startsWith(`Code-pair response field "${field}" ${problem}`), msg);
  }
});

test("processCodePairResponse() checks fields in a fixed order", () => {
  const msg = protocol(
    () =>
      processCodePairResponse(
        DIALECTS.lwa,
        res({ ...GOOD, device_code: "", user_code: "", expires_in: 0 }),
      ),
    INVALID_FIELD,
    "device_code",
  );
  assert.is(msg, 'Code-pair response field "device_code" is empty');
});

test("processCodePairResponse() requires a JSON object body", () => {
  const cases: Array<[FormResponse, string]> = [
    [{ status: 200, body: undefined, text: "" }, "Code-pair response body is empty"],
    [{ status: 200, body: undefined, text: "<html>" }, "Code-pair response body is not JSON"],
    [res([GOOD]), "Code-pair response body is an array, not a JSON object"],
    [res(null), "Code-pair response body is null, not a JSON object"],
    [res("x"), "Code-pair response body is a string, not a JSON object"],
  ];
  for (const [r, text] of cases) {
    assert.is(protocol(() => processCodePairResponse(DIALECTS.lwa, r), INVALID_BODY), text);
  }
});

test("processCodePairResponse() turns a 4xx OAuth body into OAuthError", () => {
  const body = { error: "invalid_scope", error_description: "An unknown scope was requested" };
  try {
    processCodePairResponse(DIALECTS.lwa, res(body, 400));
    assert.unreachable("expected OAuthError");
  } catch (e) {
    assert.instance(e, OAuthError);
    const o = e as OAuthError;
    assert.is(o.error, "invalid_scope");
    assert.is(o.status, 400);
    assert.is(o.errorDescription, "An unknown scope was requested");
    assert.is(
      o.message,
      "Code-pair request refused: invalid_scope (An unknown scope was requested)",
    );
    assert.ok(isScopeRefusal(o));
    assert.not.ok(isRetryable(o));
  }
});

test("processCodePairResponse() calls other statuses INVALID_STATUS with the status", () => {
  const cases: Array<[FormResponse, boolean]> = [
    [res(undefined, 503), true],
    [res({ error: "server_error" }, 500), true],
    [res(GOOD, 201), false],
    [res(undefined, 302), false],
    [{ status: 400, body: undefined, text: "Bad request" }, false],
    [res({ message: "no error field" }, 403), false],
  ];
  for (const [r, retry] of cases) {
    try {
      processCodePairResponse(DIALECTS.lwa, r);
      assert.unreachable("expected ProtocolError");
    } catch (e) {
      assert.instance(e, ProtocolError);
      const p = e as ProtocolError;
      assert.is(p.code, INVALID_STATUS);
      assert.is(p.status, r.status);
      assert.match(p.message, `Code-pair request failed: the server answered HTTP ${r.status}`);
      assert.is(isRetryable(p), retry, p.message);
    }
  }
});

test("processCodePairResponse() attaches the response non-enumerably", () => {
  const r = res({ ...GOOD, expires_in: 0 });
  try {
    processCodePairResponse(DIALECTS.lwa, r);
    assert.unreachable("expected ProtocolError");
  } catch (e) {
    const p = e as ProtocolError;
    assert.is(p.response, r);
    assert.not.ok(Object.keys(p).includes("response"));
    assert.not.ok(JSON.stringify(p).includes(DEVICE_CODE));
    assert.not.ok(Deno.inspect(p).includes(DEVICE_CODE));
  }
});

test("acceptLanguage() sends only the Alexa Auto SDK's languages, else en-US", () => {
  const cases: [string, string][] = [
    ["en-US", "en-US"],
    ["de-DE", "de-DE"],
    ["de_de", "de-DE"],
    ["DE-at", "de-DE"],
    ["de", "de-DE"],
    ["en-AU", "en-US"],
    ["en-GB", "en-GB"],
    ["pt-PT", "pt-BR"],
    ["ja", "ja-JP"],
    ["nl-NL", "en-US"],
    ["zh-Hans-CN", "en-US"],
  ];
  for (const [tag, sent] of cases) assert.is(acceptLanguage(tag), sent, tag);
  for (const t of ACCEPT_LANGUAGES) assert.is(acceptLanguage(t), t);
});

test.run();
