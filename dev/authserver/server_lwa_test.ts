import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  type Answer,
  assertError,
  CLIENT,
  lwaCodepair,
  lwaPoll,
  post,
  refresh,
  withServer,
} from "../../test/support/authserver.ts";
import type { AuthServer } from "./server.ts";
import { MISSING_SECRET, UNKNOWN_SCOPE } from "./state.ts";

const LOWER = (url: string) => url.replace("/auth/O2/", "/auth/o2/");

/** Code pair, approval, first poll: the tokens. */
async function link(s: AuthServer, clock: { advance(ms: number): Promise<void> }) {
  const pair = await lwaCodepair(s);
  assert.is(pair.status, 200);
  assert.ok(s.state.approve(pair.body["user_code"] as string));
  await clock.advance(5000);
  const tokens = await lwaPoll(s, pair);
  assert.is(tokens.status, 200, JSON.stringify(tokens.body));
  return { pair, tokens };
}

test("LWA codepair answers user_code, device_code, verification_uri, expires_in, interval", async () => {
  await withServer(async (s) => {
    for (const url of [s.lwa.codepairUrl, LOWER(s.lwa.codepairUrl)]) {
      const a = await lwaCodepair(s, {}, url);
      assert.is(a.status, 200, JSON.stringify(a.body));
      assert.match(a.headers.get("content-type") ?? "", "application/json");
      assert.is(a.headers.get("cache-control"), "no-store");
      assert.match(a.body["user_code"] as string, /^[A-Z]{6}$/);
      assert.type(a.body["device_code"], "string");
      assert.ok((a.body["device_code"] as string).length >= 20);
      assert.is(a.body["verification_uri"], s.verificationUrl);
      assert.is(a.body["expires_in"], 600);
      assert.is(a.body["interval"], 5);
      assert.not.ok("verification_uri_complete" in a.body);
    }
    const st = s.state.stats();
    assert.is(st.codepair, 2);
    assert.is(st.byPath["/auth/O2/create/codepair"], 1);
    assert.is(st.byPath["/auth/o2/create/codepair"], 1);
  });
});

test("LWA codepair takes interval and lifetime from the client", async () => {
  await withServer(async (s) => {
    const a = await lwaCodepair(s);
    assert.is(a.body["interval"], 2);
    assert.is(a.body["expires_in"], 120);
  }, { clients: [{ clientId: CLIENT, interval: 2, codeLifetime: 120 }] });
});

test("LWA codepair refuses an unknown client with invalid_client", async () => {
  await withServer(async (s) => {
    assertError(await lwaCodepair(s, { client_id: "amzn1.nobody" }), "invalid_client");
  });
});

test("LWA codepair refuses a scope not enabled for the client with Amazon's exact words", async () => {
  await withServer(async (s) => {
    for (const scope of ["music::library:read", "alexa:all music::library:read"]) {
      const a = await lwaCodepair(s, { scope });
      assertError(a, "invalid_scope");
      assert.equal(a.body, { error: "invalid_scope", error_description: UNKNOWN_SCOPE });
      assert.is(a.body["error_description"], "An unknown scope was requested");
    }
    // The day Amazon enables the profile: same request, now accepted.
    s.state.enableScope(CLIENT, "music::library:read");
    const ok = await lwaCodepair(s, { scope: "alexa:all music::library:read" });
    assert.is(ok.status, 200, JSON.stringify(ok.body));
  });
});

test("LWA codepair refuses missing or invalid fields with invalid_request", async () => {
  await withServer(async (s) => {
    const cases: Record<string, string>[] = [
      { response_type: "" },
      { response_type: "code" },
      { client_id: "" },
      { scope: "" },
      { scope_data: "" },
      { scope_data: "not json" },
      { scope_data: "[1]" },
      { scope_data: JSON.stringify({ "alexa:all": {} }) },
      {
        scope_data: JSON.stringify({
          "alexa:all": { productID: "P", productInstanceAttributes: {} },
        }),
      },
      {
        scope_data: JSON.stringify({
          "alexa:all": { productID: "", productInstanceAttributes: { deviceSerialNumber: "S" } },
        }),
      },
    ];
    for (const fields of cases) {
      const a = await lwaCodepair(s, fields);
      assert.is(a.body["error"], "invalid_request", JSON.stringify(fields));
      assert.is(a.status, 400);
    }
    const missingSerial = await lwaCodepair(s, {
      scope_data: JSON.stringify({ "alexa:all": { productID: "P" } }),
    });
    assert.match(missingSerial.body["error_description"] as string, "deviceSerialNumber");
    const noData = await post(s.lwa.codepairUrl, {
      response_type: "device_code",
      client_id: CLIENT,
      scope: "alexa:all",
    });
    assertError(noData, "invalid_request");
    assert.match(noData.body["error_description"] as string, "scope_data");
  });
});

test("LWA codepair needs no scope_data for a scope other than alexa:all", async () => {
  await withServer(async (s) => {
    const a = await post(s.lwa.codepairUrl, {
      response_type: "device_code",
      client_id: CLIENT,
      scope: "profile",
    });
    assert.is(a.status, 200, JSON.stringify(a.body));
  }, { clients: [{ clientId: CLIENT, enabledScopes: ["alexa:all", "profile"] }] });
});

test("LWA endpoints refuse a wrong content type, a repeated field and GET", async () => {
  await withServer(async (s) => {
    const asJson = await fetch(s.lwa.codepairUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ response_type: "device_code", client_id: CLIENT }),
    });
    const body = await asJson.json();
    assert.is(asJson.status, 400);
    assert.is(body.error, "invalid_request");

    const twice = await fetch(s.lwa.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=device_code&device_code=a&device_code=b&user_code=X",
    });
    assert.is(twice.status, 400);
    assert.is((await twice.json()).error, "invalid_request");

    const get = await fetch(s.lwa.tokenUrl);
    assert.is(get.status, 405);
    assert.is(get.headers.get("allow"), "POST");
    assert.is((await get.json()).error, "invalid_request");

    const huge = await post(s.lwa.tokenUrl, { grant_type: "device_code", pad: "x".repeat(70000) });
    assertError(huge, "invalid_request", 413);
  });
});

test("LWA token: pending, then tokens once approved, on both path spellings", async () => {
  await withServer(async (s, clock) => {
    for (const url of [s.lwa.tokenUrl, LOWER(s.lwa.tokenUrl)]) {
      const pair = await lwaCodepair(s);
      await clock.advance(5000);
      assertError(await lwaPoll(s, pair, {}, url), "authorization_pending");
      assert.ok(s.state.approve(pair.body["user_code"] as string));
      await clock.advance(5000);
      const t = await lwaPoll(s, pair, {}, url);
      assert.is(t.status, 200, JSON.stringify(t.body));
      assert.is(t.headers.get("cache-control"), "no-store");
      assert.equal(Object.keys(t.body).sort(), [
        "access_token",
        "expires_in",
        "refresh_token",
        "token_type",
      ]);
      const access = t.body["access_token"] as string;
      const refreshToken = t.body["refresh_token"] as string;
      assert.match(access, /^Atza\|[A-Za-z0-9_-]+$/);
      assert.match(refreshToken, /^Atzr\|[A-Za-z0-9_-]+$/);
      assert.is(access.length, 1000);
      assert.is(refreshToken.length, 1000);
      assert.is(t.body["token_type"], "bearer");
      assert.is(t.body["expires_in"], 3600);
    }
    const st = s.state.stats();
    assert.is(st.token, 4);
    assert.is(st.byPath["/auth/O2/token"], 2);
    assert.is(st.byPath["/auth/o2/token"], 2);
  });
});

test("LWA token strings take the configured lengths and lifetime", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    assert.is((tokens.body["access_token"] as string).length, 2048);
    assert.is((tokens.body["refresh_token"] as string).length, 64);
    assert.is(tokens.body["expires_in"], 300);
  }, {
    clients: [{
      clientId: CLIENT,
      accessTokenLength: 2048,
      refreshTokenLength: 64,
      tokenLifetime: 300,
    }],
  });
});

test("LWA token: a device code is redeemed once", async () => {
  await withServer(async (s, clock) => {
    const { pair } = await link(s, clock);
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "invalid_grant");
  });
});

test("LWA token: polling faster than the interval gets slow_down, and the interval grows by 5 s", async () => {
  await withServer(async (s, clock) => {
    const pair = await lwaCodepair(s);
    assertError(await lwaPoll(s, pair), "authorization_pending"); // the first poll is free
    await clock.advance(1000);
    assertError(await lwaPoll(s, pair), "slow_down"); // interval now 10 s
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "slow_down"); // 5 s < 10 s: now 15 s
    await clock.advance(15000);
    assertError(await lwaPoll(s, pair), "authorization_pending");
    await clock.advance(14000);
    assertError(await lwaPoll(s, pair), "slow_down"); // 14 s < 15 s: now 20 s
    await clock.advance(20000);
    assertError(await lwaPoll(s, pair), "authorization_pending");
  });
});

test("LWA token: a code that outlives expires_in is expired_token, and can no longer be approved", async () => {
  await withServer(async (s, clock) => {
    const pair = await lwaCodepair(s);
    await clock.advance(599_000);
    assertError(await lwaPoll(s, pair), "authorization_pending");
    await clock.advance(1000);
    assertError(await lwaPoll(s, pair), "expired_token");
    assert.not.ok(s.state.approve(pair.body["user_code"] as string));
    assert.equal(s.state.pending(), []);
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "expired_token");
  });
});

test("LWA token: an approved code not redeemed before expiry is expired_token", async () => {
  await withServer(async (s, clock) => {
    const pair = await lwaCodepair(s);
    assert.ok(s.state.approve(pair.body["user_code"] as string));
    await clock.advance(600_000);
    assertError(await lwaPoll(s, pair), "expired_token");
  });
});

test("LWA token: a denied code is access_denied", async () => {
  await withServer(async (s, clock) => {
    const pair = await lwaCodepair(s);
    assert.ok(s.state.deny(pair.body["user_code"] as string));
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "access_denied");
    assert.not.ok(s.state.approve(pair.body["user_code"] as string));
  });
});

test("LWA token: an unknown device code is invalid_code_pair, a wrong user code invalid_grant, missing fields invalid_request", async () => {
  await withServer(async (s) => {
    const pair = await lwaCodepair(s);
    const unknown = await lwaPoll(s, pair, { device_code: "nope" });
    assert.equal(unknown.body, {
      error: "invalid_code_pair",
      error_description: "The code pair given is invalid or expired",
    });
    assertError(unknown, "invalid_code_pair");
    assertError(await lwaPoll(s, pair, { user_code: "ZZZZZZ" }), "invalid_grant");
    assertError(await lwaPoll(s, pair, { user_code: "" }), "invalid_request");
    assertError(await lwaPoll(s, pair, { device_code: "" }), "invalid_request");
    assertError(await post(s.lwa.tokenUrl, { device_code: "x" }), "invalid_request");
  });
});

test("LWA token: the user code on a poll is matched ignoring case and dashes", async () => {
  await withServer(async (s, clock) => {
    const pair = await lwaCodepair(s);
    const code = pair.body["user_code"] as string;
    const typed = `${code.slice(0, 3).toLowerCase()}-${code.slice(3)}`;
    s.state.approve(typed);
    await clock.advance(5000);
    const t = await lwaPoll(s, pair, { user_code: typed });
    assert.is(t.status, 200, JSON.stringify(t.body));
  });
});

test("LWA token: other grant types are unsupported_grant_type", async () => {
  await withServer(async (s) => {
    const pair = await lwaCodepair(s);
    for (const g of ["urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "x"]) {
      assertError(await lwaPoll(s, pair, { grant_type: g }), "unsupported_grant_type");
    }
  });
});

test("LWA refresh rotates the refresh token; the old one works for a 60 s grace, then invalid_grant", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const r0 = tokens.body["refresh_token"] as string;
    const a = await refresh(s.lwa.tokenUrl, r0);
    assert.is(a.status, 200, JSON.stringify(a.body));
    const r1 = a.body["refresh_token"] as string;
    assert.match(r1, /^Atzr\|/);
    assert.is.not(r1, r0);
    assert.is.not(a.body["access_token"], tokens.body["access_token"]);
    assert.is(a.body["token_type"], "bearer");
    assert.is(a.body["expires_in"], 3600);
    assert.not.ok("scope" in a.body);

    await clock.advance(59_000);
    const retry = await refresh(s.lwa.tokenUrl, r0); // the answer was lost: still accepted
    assert.is(retry.status, 200);
    await clock.advance(1000);
    assertError(await refresh(s.lwa.tokenUrl, r0), "invalid_grant");
    assertError(await refresh(s.lwa.tokenUrl, r0), "invalid_grant");

    const b = await refresh(LOWER(s.lwa.tokenUrl), r1);
    assert.is(b.status, 200);
    assert.is(s.state.stats().refresh, 5);
  });
});

test("LWA refresh without rotation answers the same refresh token", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const r0 = tokens.body["refresh_token"] as string;
    for (let i = 0; i < 2; i++) {
      await clock.advance(3_600_000);
      const a = await refresh(s.lwa.tokenUrl, r0);
      assert.is(a.status, 200);
      assert.is(a.body["refresh_token"], r0);
    }
  }, { clients: [{ clientId: CLIENT, rotateRefresh: false }] });
});

test("LWA refresh after revocation is invalid_grant for the whole grant", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const r0 = tokens.body["refresh_token"] as string;
    const r1 = (await refresh(s.lwa.tokenUrl, r0)).body["refresh_token"] as string;
    const access = (await refresh(s.lwa.tokenUrl, r1)).body["access_token"] as string;
    assert.ok(s.state.introspect(access).active);
    assert.ok(s.state.revokeRefreshToken(r0));
    assertError(await refresh(s.lwa.tokenUrl, r0), "invalid_grant");
    assertError(await refresh(s.lwa.tokenUrl, r1), "invalid_grant");
    assert.not.ok(s.state.introspect(access).active);
    assert.not.ok(s.state.revokeRefreshToken("Atzr|unknown"));
  });
});

test("LWA refresh after revokeClient is invalid_grant for every link of that client", async () => {
  await withServer(async (s, clock) => {
    const one = await link(s, clock);
    const two = await link(s, clock);
    assert.is(s.state.revokeClient(CLIENT), 2);
    for (const t of [one.tokens, two.tokens]) {
      assertError(
        await refresh(s.lwa.tokenUrl, t.body["refresh_token"] as string),
        "invalid_grant",
      );
    }
  });
});

test("LWA refresh errors: unknown token, unknown or other client, missing fields", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const r0 = tokens.body["refresh_token"] as string;
    assertError(await refresh(s.lwa.tokenUrl, "Atzr|nope"), "invalid_grant");
    assertError(await refresh(s.lwa.tokenUrl, r0, { client_id: "amzn1.nobody" }), "invalid_client");
    assertError(await refresh(s.lwa.tokenUrl, r0, { client_id: "other" }), "invalid_client");
    assertError(await refresh(s.lwa.tokenUrl, r0, { client_id: "" }), "invalid_request");
    assertError(await refresh(s.lwa.tokenUrl, ""), "invalid_request");
    // None of those used the token up.
    assert.is((await refresh(s.lwa.tokenUrl, r0)).status, 200);
  }, { clients: [{ clientId: CLIENT }, { clientId: "other" }] });
});

test("LWA refresh with a web-type client id is refused for the missing client_secret", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock); // linking works; the first refresh fails
    const a = await refresh(s.lwa.tokenUrl, tokens.body["refresh_token"] as string);
    assert.equal(a.body, { error: "invalid_request", error_description: MISSING_SECRET });
    assert.is(
      a.body["error_description"],
      "The request is missing a required parameter : client_secret",
    );
    assert.is(a.status, 400);
  }, { clients: [{ clientId: CLIENT, type: "web" }] });
});

test("LWA access tokens expire after expires_in (as a resource server would see them)", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const access = tokens.body["access_token"] as string;
    assert.equal(s.state.introspect(access), {
      active: true,
      client_id: CLIENT,
      scope: "alexa:all",
      expires_in: 3600,
    });
    await clock.advance(3_600_000);
    assert.equal(s.state.introspect(access), { active: false });
  });
});

test("LWA: the same tokens answer never reaches two device codes (codes are unique)", async () => {
  await withServer(async (s) => {
    const seen = new Set<string>();
    const answers: Answer[] = [];
    for (let i = 0; i < 20; i++) answers.push(await lwaCodepair(s));
    for (const a of answers) {
      seen.add(a.body["user_code"] as string);
      seen.add(a.body["device_code"] as string);
    }
    assert.is(seen.size, 40);
    assert.is(s.state.pending().length, 20);
    assert.equal(s.state.pending()[0]!.scopes, ["alexa:all"]);
  });
});

test.run();
