import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  BODY_TOO_LARGE,
  checkStatus,
  type FormResponse,
  INVALID_BODY,
  INVALID_FIELD,
  INVALID_STATUS,
  isClientRejection,
  isRetryable,
  isScopeRefusal,
  OAuthError,
  ProtocolError,
  redact,
  safeUrl,
  saysUnknownScope,
  TransportError,
  type TransportKind,
} from "./errors.ts";
import { oneLine } from "../text.ts";

const ACCESS = "Atza|IwEBIAccessTokenSecretabcdefghijklmnopqrstuvwxyz0123456789";
const REFRESH = "Atzr|IwEBIRefreshTokenSecretabcdefghijklmnopqrstuvwxyz0123456789";
const DEVICE_CODE = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const SECRETS = [ACCESS, REFRESH, DEVICE_CODE, "IwEBIAccessTokenSecret", "IwEBIRefreshTokenSecret"];

/** A response whose body and text hold every secret. */
const LEAKY: FormResponse = {
  status: 400,
  body: { error: "invalid_grant", access_token: ACCESS, refresh_token: REFRESH, d: DEVICE_CODE },
  text: JSON.stringify({ access_token: ACCESS, refresh_token: REFRESH, d: DEVICE_CODE }),
};

function assertNoSecret(e: Error): void {
  const all = [e.message, String(e), e.stack ?? "", JSON.stringify(e), Deno.inspect(e)];
  for (const text of all) {
    for (const s of SECRETS) assert.not.ok(text.includes(s), `a secret leaked into: ${text}`);
  }
}

test("OAuthError carries error, description and status; message like the server's refusal", () => {
  const e = new OAuthError("Token", "authorization_pending", 400, {
    description: "The user has not yet authorized",
    response: LEAKY,
  });
  assert.instance(e, Error);
  assert.is(e.name, "OAuthError");
  assert.is(e.error, "authorization_pending");
  assert.is(e.errorDescription, "The user has not yet authorized");
  assert.is(e.status, 400);
  assert.is(e.operation, "Token");
  assert.is(
    e.message,
    "Token request refused: authorization_pending (The user has not yet authorized)",
  );
  assert.is(String(e), `OAuthError: ${e.message}`);
  assert.is(e.response, LEAKY);
  assert.equal(Object.keys(e).sort(), ["error", "errorDescription", "operation", "status"]);
  assertNoSecret(e);
});

test("OAuthError redacts tokens and long codes a server echoes in its description", () => {
  const e = new OAuthError("Refresh", "invalid_grant", 400, {
    description: `token ${REFRESH} and code ${DEVICE_CODE}\nline two`,
  });
  assert.is(e.errorDescription, "token [redacted] and code [redacted] line two");
  assertNoSecret(e);
  const long = new OAuthError("Token", "invalid_request", 400, { description: "x ".repeat(400) });
  assert.ok(long.errorDescription!.length <= 300);
  assert.not.match(long.message, "\n");
});

test("ProtocolError carries code, field and status; the response is hidden", () => {
  const e = new ProtocolError(INVALID_FIELD, 'Token response field "token_type" is not "bearer"', {
    field: "token_type",
    status: 200,
    response: LEAKY,
  });
  assert.is(e.name, "ProtocolError");
  assert.is(e.code, "INVALID_FIELD");
  assert.is(e.field, "token_type");
  assert.is(e.status, 200);
  assert.is(e.response, LEAKY);
  assert.equal(Object.keys(e).sort(), ["code", "field", "status"]);
  assert.equal(JSON.parse(JSON.stringify(e)), {
    code: "INVALID_FIELD",
    field: "token_type",
    status: 200,
  });
  assertNoSecret(e);
  assert.equal([INVALID_STATUS, INVALID_BODY, INVALID_FIELD, BODY_TOO_LARGE], [
    "INVALID_STATUS",
    "INVALID_BODY",
    "INVALID_FIELD",
    "BODY_TOO_LARGE",
  ]);
});

test("TransportError carries kind and url; the cause is not serialised", () => {
  const cause = new Error(`error sending request: ${ACCESS}`);
  const e = new TransportError("network", "POST https://a.example/t failed: cannot connect", {
    url: "https://a.example/t",
    cause,
  });
  assert.is(e.name, "TransportError");
  assert.is(e.kind, "network");
  assert.is(e.url, "https://a.example/t");
  assert.is(e.cause, cause);
  assert.equal(JSON.parse(JSON.stringify(e)), { kind: "network", url: "https://a.example/t" });
  for (const s of [e.message, String(e), e.stack ?? "", JSON.stringify(e)]) {
    assert.not.ok(s.includes(ACCESS));
  }
});

test("checkStatus() passes 200, makes OAuthError of a 4xx OAuth body, else INVALID_STATUS", () => {
  checkStatus({ status: 200, body: undefined, text: "" }, "Token");
  let o: unknown;
  try {
    checkStatus(LEAKY, "Refresh");
  } catch (e) {
    o = e;
  }
  assert.instance(o, OAuthError);
  assert.is((o as OAuthError).message, "Refresh request refused: invalid_grant");
  assertNoSecret(o as Error);
  for (
    const r of [
      { status: 500, body: { error: "server_error" }, text: "" },
      { status: 400, body: { error: "" }, text: "" },
      { status: 400, body: { error: 5 }, text: "" },
      { status: 204, body: undefined, text: "" },
    ]
  ) {
    try {
      checkStatus(r, "Code-pair");
      assert.unreachable("expected INVALID_STATUS");
    } catch (e) {
      assert.instance(e, ProtocolError);
      assert.is((e as ProtocolError).code, INVALID_STATUS);
      assert.is((e as ProtocolError).status, r.status);
    }
  }
});

test("checkStatus() makes Amazon's HTML or text unknown-scope page an invalid_scope refusal", () => {
  const html = "<!DOCTYPE html><html><head><title>400 Bad Request - An unknown scope was " +
    "requested</title></head><body><h1>400 Bad Request</h1><p>An unknown scope was requested" +
    "</p></body></html>";
  for (const text of [html, "400 Bad Request - An unknown scope was requested"]) {
    const r = { status: 400, body: undefined, text };
    let e: unknown;
    try {
      checkStatus(r, "Code-pair");
    } catch (x) {
      e = x;
    }
    assert.instance(e, OAuthError);
    assert.is((e as OAuthError).error, "invalid_scope");
    assert.is((e as OAuthError).errorDescription, "An unknown scope was requested");
    assert.ok(isScopeRefusal(e));
    assert.ok(saysUnknownScope(e as OAuthError));
  }
  // Another page, or the same words on a 5xx, is no refusal: a coded protocol error.
  for (
    const [status, text] of [[400, "<h1>400 Bad Request</h1>"], [
      503,
      "An unknown scope was requested",
    ]] as const
  ) {
    let e: unknown;
    try {
      checkStatus({ status, body: undefined, text }, "Code-pair");
    } catch (x) {
      e = x;
    }
    assert.instance(e, ProtocolError);
    assert.is((e as ProtocolError).code, INVALID_STATUS);
    assert.not.ok(isScopeRefusal(e));
  }
});

test("isRetryable() retries LWA's servererror like server_error", () => {
  assert.ok(isRetryable(new OAuthError("Token", "servererror", 400)));
  assert.ok(isRetryable(new OAuthError("Token", "server_error", 400)));
  assert.not.ok(isRetryable(new OAuthError("Token", "temporarily_weird", 400)));
});

test("isClientRejection() knows the refusals of a misconfigured client", () => {
  for (
    const e of [
      "invalid_client",
      "unauthorized_client",
      "invalid_request",
      "unsupported_grant_type",
    ]
  ) {
    assert.ok(isClientRejection(new OAuthError("Refresh", e, 400)), e);
  }
  for (const e of ["invalid_grant", "invalid_scope", "servererror"]) {
    assert.not.ok(isClientRejection(new OAuthError("Refresh", e, 400)), e);
  }
  assert.not.ok(isClientRejection(new TransportError("network", "x")));
});

test("isScopeRefusal() knows invalid_scope and LWA's unknown-scope wording", () => {
  const yes = [
    new OAuthError("Code-pair", "invalid_scope", 400),
    new OAuthError("Code-pair", "invalid_request", 400, {
      description: "An unknown scope was requested",
    }),
    new OAuthError("Code-pair", "whatever", 400, {
      description: "AN UNKNOWN SCOPE WAS REQUESTED.",
    }),
  ];
  const no: unknown[] = [
    new OAuthError("Code-pair", "invalid_request", 400, { description: "Missing client_id" }),
    new OAuthError("Token", "invalid_grant", 400),
    new ProtocolError(INVALID_STATUS, "x", {
      status: 500,
      response: { status: 500, body: undefined, text: "An unknown scope was requested" },
    }),
    new TransportError("network", "x"),
    new Error("An unknown scope was requested"),
    "invalid_scope",
    undefined,
  ];
  for (const e of yes) assert.ok(isScopeRefusal(e), String(e));
  for (const e of no) assert.not.ok(isScopeRefusal(e), String(e));
});

test("isRetryable(): transport but aborted, 5xx/408/429, never the poll's flow control", () => {
  const kinds: Array<[TransportKind, boolean]> = [
    ["timeout", true],
    ["network", true],
    ["tls", true],
    ["clock_unset", true],
    ["aborted", false],
  ];
  for (const [kind, retry] of kinds) {
    assert.is(isRetryable(new TransportError(kind, "x")), retry, kind);
  }
  const statuses: Array<[number | undefined, boolean]> = [
    [500, true],
    [502, true],
    [503, true],
    [599, true],
    [408, true],
    [429, true],
    [400, false],
    [404, false],
    [302, false],
    [200, false],
    [undefined, false],
  ];
  for (const [status, retry] of statuses) {
    const e = new ProtocolError(INVALID_STATUS, "x", status === undefined ? {} : { status });
    assert.is(isRetryable(e), retry, String(status));
  }
  assert.not.ok(isRetryable(new ProtocolError(INVALID_FIELD, "x", { status: 200 })));
  assert.not.ok(isRetryable(new ProtocolError(BODY_TOO_LARGE, "x", { status: 200 })));
  for (const code of ["authorization_pending", "slow_down", "expired_token", "invalid_grant"]) {
    assert.not.ok(isRetryable(new OAuthError("Token", code, 400)), code);
  }
  assert.ok(isRetryable(new OAuthError("Token", "temporarily_unavailable", 400)));
  assert.ok(isRetryable(new OAuthError("Token", "server_error", 400)));
  assert.not.ok(isRetryable(new Error("x")));
  assert.not.ok(isRetryable(new TypeError("fetch failed")));
});

test("oneLine(), redact() and safeUrl() keep messages short and clean", () => {
  assert.is(oneLine("a\r\nb\tc\u0000d", 100), "a b c d");
  assert.is(oneLine("abcdef", 4), "abc…");
  assert.is(redact("got Atza|abc.def-ghi, ok"), "got [redacted], ok");
  assert.is(redact(`x ${"A".repeat(31)} y`), `x ${"A".repeat(31)} y`);
  assert.is(redact(`x ${"A".repeat(32)} y`), "x [redacted] y");
  assert.is(safeUrl("https://u:p@a.example:8443/p/q?code=1#f"), "https://a.example:8443/p/q");
  assert.is(safeUrl("nope"), "(invalid URL)");
});

test.run();
