import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  assertError,
  CLIENT,
  lwaCodepair,
  post,
  refresh,
  rfcCodepair,
  rfcPoll,
  withServer,
} from "../../test/support/authserver.ts";
import type { AuthServer } from "./server.ts";
import { UNKNOWN_SCOPE } from "./state.ts";

const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

async function link(
  s: AuthServer,
  clock: { advance(ms: number): Promise<void> },
  fields: Record<string, string> = {},
) {
  const pair = await rfcCodepair(s, fields);
  assert.is(pair.status, 200, JSON.stringify(pair.body));
  assert.ok(s.state.approve(pair.body["user_code"] as string));
  await clock.advance(5000);
  const tokens = await rfcPoll(s, pair);
  assert.is(tokens.status, 200, JSON.stringify(tokens.body));
  return { pair, tokens };
}

test("RFC 8628 device authorization answers every field, verification_uri_complete too", async () => {
  await withServer(async (s) => {
    const a = await rfcCodepair(s);
    assert.is(a.status, 200, JSON.stringify(a.body));
    assert.is(a.headers.get("cache-control"), "no-store");
    const code = a.body["user_code"] as string;
    assert.match(code, USER_CODE);
    assert.type(a.body["device_code"], "string");
    assert.is(a.body["verification_uri"], s.verificationUrl);
    const complete = new URL(a.body["verification_uri_complete"] as string);
    assert.is(complete.origin + complete.pathname, s.verificationUrl);
    assert.is(complete.searchParams.get("user_code"), code);
    assert.is(a.body["expires_in"], 600);
    assert.is(a.body["interval"], 5);
    assert.is(s.state.stats().byPath["/oauth2/device_authorization"], 1);
  });
});

test("RFC 8628 device authorization without scope asks for the client's enabled scopes", async () => {
  await withServer(async (s) => {
    const a = await post(s.rfc8628.codepairUrl, { client_id: CLIENT });
    assert.is(a.status, 200);
    assert.equal(s.state.pending()[0]!.scopes, ["alexa:all", "profile"]);
  }, { clients: [{ clientId: CLIENT, enabledScopes: ["alexa:all", "profile"] }] });
});

test("RFC 8628 device authorization errors: client, scope, fields", async () => {
  await withServer(async (s) => {
    assertError(await rfcCodepair(s, { client_id: "nobody" }), "invalid_client");
    assertError(await rfcCodepair(s, { client_id: "" }), "invalid_request");
    const scope = await rfcCodepair(s, { scope: "alexa:all music::playback" });
    assert.equal(scope.body, { error: "invalid_scope", error_description: UNKNOWN_SCOPE });
    assertError(scope, "invalid_scope");
    const asJson = await fetch(s.rfc8628.codepairUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: CLIENT }),
    });
    assert.is(asJson.status, 400);
    assert.is((await asJson.json()).error, "invalid_request");
  });
});

test("RFC 8628 token: pending, then tokens with scope once approved; redeemed once", async () => {
  await withServer(async (s, clock) => {
    const pair = await rfcCodepair(s);
    await clock.advance(5000);
    assertError(await rfcPoll(s, pair), "authorization_pending");
    // Typed as a person would: lowercase, no dash.
    const typed = (pair.body["user_code"] as string).replace("-", "").toLowerCase();
    assert.ok(s.state.approve(typed));
    await clock.advance(5000);
    const t = await rfcPoll(s, pair);
    assert.is(t.status, 200, JSON.stringify(t.body));
    assert.match(t.body["access_token"] as string, /^Atza\|[A-Za-z0-9_-]{995}$/);
    assert.match(t.body["refresh_token"] as string, /^Atzr\|[A-Za-z0-9_-]{995}$/);
    assert.is((t.body["token_type"] as string).toLowerCase(), "bearer");
    assert.is(t.body["expires_in"], 3600);
    assert.is(t.body["scope"], "alexa:all");
    await clock.advance(5000);
    assertError(await rfcPoll(s, pair), "invalid_grant");
  });
});

test("RFC 8628 token: slow_down adds 5 s for this and every later request", async () => {
  await withServer(async (s, clock) => {
    const pair = await rfcCodepair(s);
    await clock.advance(3000);
    assertError(await rfcPoll(s, pair), "authorization_pending");
    await clock.advance(4000);
    assertError(await rfcPoll(s, pair), "slow_down"); // 4 s < 5 s: now 10 s
    await clock.advance(9000);
    assertError(await rfcPoll(s, pair), "slow_down"); // 9 s < 10 s: now 15 s
    await clock.advance(15000);
    assertError(await rfcPoll(s, pair), "authorization_pending");
    await clock.advance(15000);
    assertError(await rfcPoll(s, pair), "authorization_pending");
  });
});

test("RFC 8628 token: expired_token and access_denied", async () => {
  await withServer(async (s, clock) => {
    const late = await rfcCodepair(s);
    const denied = await rfcCodepair(s);
    assert.ok(s.state.deny(denied.body["user_code"] as string));
    await clock.advance(5000);
    assertError(await rfcPoll(s, denied), "access_denied");
    await clock.advance(295_000);
    assertError(await rfcPoll(s, late), "expired_token");
  }, { clients: [{ clientId: CLIENT, codeLifetime: 300 }] });
});

test("RFC 8628 token: client errors — missing, unknown, and a code issued to another client", async () => {
  await withServer(async (s, clock) => {
    const pair = await rfcCodepair(s);
    await clock.advance(5000);
    assertError(await rfcPoll(s, pair, { client_id: "" }), "invalid_request");
    assertError(await rfcPoll(s, pair, { client_id: "nobody" }), "invalid_client");
    // RFC 6749 section 5.2: the grant was issued to another client.
    assertError(await rfcPoll(s, pair, { client_id: "other" }), "invalid_grant");
    assertError(await rfcPoll(s, pair, { device_code: "nope" }), "invalid_grant");
    assertError(await rfcPoll(s, pair, { device_code: "" }), "invalid_request");
  }, { clients: [{ clientId: CLIENT }, { clientId: "other" }] });
});

test("RFC 8628 token: LWA's literal grant and other grants are unsupported_grant_type", async () => {
  await withServer(async (s) => {
    const pair = await rfcCodepair(s);
    for (const g of ["device_code", "authorization_code", "client_credentials"]) {
      assertError(await rfcPoll(s, pair, { grant_type: g }), "unsupported_grant_type");
    }
    assertError(await rfcPoll(s, pair, { grant_type: "" }), "invalid_request");
  });
});

test("RFC 8628 and LWA device codes do not cross dialects", async () => {
  await withServer(async (s, clock) => {
    const lwa = await lwaCodepair(s);
    const rfc = await rfcCodepair(s);
    s.state.approve(lwa.body["user_code"] as string);
    s.state.approve(rfc.body["user_code"] as string);
    await clock.advance(5000);
    assertError(await rfcPoll(s, lwa), "invalid_grant");
    const onLwa = await post(s.lwa.tokenUrl, {
      grant_type: "device_code",
      device_code: rfc.body["device_code"] as string,
      user_code: rfc.body["user_code"] as string,
    });
    assertError(onLwa, "invalid_code_pair"); // LWA does not know the code pair
  });
});

test("RFC 8628 refresh: rotation with scope in the answer, grace, narrowing", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock, { scope: "alexa:all profile" });
    assert.is(tokens.body["scope"], "alexa:all profile");
    const r0 = tokens.body["refresh_token"] as string;
    const a = await refresh(s.rfc8628.tokenUrl, r0);
    assert.is(a.status, 200, JSON.stringify(a.body));
    assert.is(a.body["scope"], "alexa:all profile");
    const r1 = a.body["refresh_token"] as string;
    assert.is.not(r1, r0);

    const narrow = await refresh(s.rfc8628.tokenUrl, r1, { scope: "profile" });
    assert.is(narrow.status, 200);
    assert.is(narrow.body["scope"], "profile");
    const r2 = narrow.body["refresh_token"] as string;
    assert.is(s.state.introspect(narrow.body["access_token"] as string).scope, "profile");
    // Narrowing one answer does not shrink the grant.
    const full = await refresh(s.rfc8628.tokenUrl, r2);
    assert.is(full.body["scope"], "alexa:all profile");
    assertError(
      await refresh(s.rfc8628.tokenUrl, full.body["refresh_token"] as string, {
        scope: "alexa:all music::playback",
      }),
      "invalid_scope",
    );

    await clock.advance(60_000);
    assertError(await refresh(s.rfc8628.tokenUrl, r0), "invalid_grant");
  }, { clients: [{ clientId: CLIENT, enabledScopes: ["alexa:all", "profile"] }] });
});

test("RFC 8628 refresh without rotation leaves refresh_token out (keep the old one)", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const a = await refresh(s.rfc8628.tokenUrl, tokens.body["refresh_token"] as string);
    assert.is(a.status, 200);
    assert.not.ok("refresh_token" in a.body);
    assert.is(a.body["scope"], "alexa:all");
  }, { clients: [{ clientId: CLIENT, rotateRefresh: false }] });
});

test("RFC 8628 refresh errors: revoked, another client's token, web client, unknown client", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const r0 = tokens.body["refresh_token"] as string;
    assertError(await refresh(s.rfc8628.tokenUrl, r0, { client_id: "other" }), "invalid_grant");
    assertError(await refresh(s.rfc8628.tokenUrl, r0, { client_id: "web" }), "invalid_client");
    assertError(await refresh(s.rfc8628.tokenUrl, r0, { client_id: "nobody" }), "invalid_client");
    assertError(await refresh(s.rfc8628.tokenUrl, r0, { client_id: "" }), "invalid_request");
    assert.ok(s.state.revokeRefreshToken(r0));
    assertError(await refresh(s.rfc8628.tokenUrl, r0), "invalid_grant");
  }, {
    clients: [{ clientId: CLIENT }, { clientId: "other" }, { clientId: "web", type: "web" }],
  });
});

test.run();
