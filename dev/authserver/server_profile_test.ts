/**
 * Users and `GET /user/profile` over real HTTP: who approves a code, what the profile endpoint
 * answers each kind of token, and the admin routes that name the user.
 */
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
import { DEFAULT_USER_ID, demoProfile, USER_ID } from "./profile.ts";
import type { AuthServer } from "./server.ts";

const ALICE = "amzn1.account.AHALICE00000000000000000000A";
const BOB = "amzn1.account.AHBOB000000000000000000000B0";
const PROFILE_CLIENT = {
  clientId: CLIENT,
  enabledScopes: ["alexa:all", "profile", "profile:user_id", "postal_code"],
};

/** Code pair for `scope`, approval (by `approve`), first poll: the tokens answer. */
async function link(
  s: AuthServer,
  clock: { advance(ms: number): Promise<void> },
  scope: string,
  approve: (userCode: string) => Promise<void> | void = (c) => void s.state.approve(c),
): Promise<Answer> {
  const pair = await lwaCodepair(s, { scope });
  assert.is(pair.status, 200, JSON.stringify(pair.body));
  await approve(pair.body["user_code"] as string);
  await clock.advance(5000);
  const tokens = await lwaPoll(s, pair);
  assert.is(tokens.status, 200, JSON.stringify(tokens.body));
  return tokens;
}

async function profile(
  s: AuthServer,
  token: string | null,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(s.profileUrl, {
    ...(token === null ? {} : { headers: { authorization: `Bearer ${token}` } }),
    ...init,
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

function assertInvalidToken(a: { status: number; body: unknown; headers: Headers }): void {
  assert.is(a.status, 401, JSON.stringify(a.body));
  assert.equal(a.body, {
    error: "invalid_token",
    error_description: "The access token is invalid",
  });
  assert.is(a.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
  assert.match(a.headers.get("content-type") ?? "", "application/json");
}

test("profile: profile:user_id answers the user id of the user who approved", async () => {
  await withServer(async (s, clock) => {
    const t = await link(s, clock, "alexa:all profile:user_id");
    const a = await profile(s, t.body["access_token"] as string);
    assert.is(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body, { user_id: DEFAULT_USER_ID });
    assert.match(a.headers.get("content-type") ?? "", "application/json");
    assert.match(DEFAULT_USER_ID, USER_ID);
    const st = s.state.stats();
    assert.is(st.profile, 1);
    assert.is(st.byPath["/user/profile"], 1);
  }, { clients: [PROFILE_CLIENT] });
});

test("profile: the profile scope answers user id, name and email, the same every time", async () => {
  await withServer(async (s, clock) => {
    const t = await link(s, clock, "profile", (c) => void s.state.approve(c, ALICE));
    const a = await profile(s, t.body["access_token"] as string);
    assert.is(a.status, 200);
    assert.equal(Object.keys(a.body).sort(), ["email", "name", "user_id"]);
    assert.is(a.body["user_id"], ALICE);
    assert.equal({ name: a.body["name"], email: a.body["email"] }, demoProfile(ALICE));
    assert.match(a.body["email"] as string, /^[a-z.]+\+[a-z0-9]{4}@example\.com$/);
    // A refreshed token belongs to the same user; the access_token parameter works too.
    const r = await refresh(s.lwa.tokenUrl, t.body["refresh_token"] as string);
    const url = `${s.profileUrl}?access_token=${
      encodeURIComponent(r.body["access_token"] as string)
    }`;
    const again = await fetch(url).then((res) => res.json());
    assert.equal(again, a.body);
    // Another user has another profile.
    assert.is.not(demoProfile(BOB).email, demoProfile(ALICE).email);
  }, { clients: [PROFILE_CLIENT] });
});

test("profile: a token without a profile scope is 403 insufficient_scope", async () => {
  await withServer(async (s, clock) => {
    const t = await link(s, clock, "alexa:all postal_code");
    const a = await profile(s, t.body["access_token"] as string);
    assert.is(a.status, 403);
    assert.is(a.body["error"], "insufficient_scope");
    assert.type(a.body["error_description"], "string");
    assert.match(a.headers.get("www-authenticate") ?? "", /^Bearer error="insufficient_scope"/);
    // A refresh narrowed to alexa:all loses the profile too.
    const p = await link(s, clock, "alexa:all profile");
    const narrowed = await refresh(s.lwa.tokenUrl, p.body["refresh_token"] as string, {
      scope: "alexa:all",
    });
    assert.is((await profile(s, narrowed.body["access_token"] as string)).status, 403);
  }, { clients: [PROFILE_CLIENT] });
});

test("profile: missing, malformed, unknown, expired and revoked tokens are 401 invalid_token", async () => {
  await withServer(async (s, clock) => {
    assertInvalidToken(await profile(s, null));
    assertInvalidToken(await profile(s, "Atza|unknown"));
    assertInvalidToken(
      await profile(s, null, { headers: { authorization: "Basic dXNlcjpwYXNz" } }),
    );
    const t = await link(s, clock, "profile");
    const access = t.body["access_token"] as string;
    assert.is((await profile(s, access)).status, 200);
    await clock.advance(3_600_000);
    assertInvalidToken(await profile(s, access));

    const u = await link(s, clock, "profile");
    const fresh = u.body["access_token"] as string;
    assert.is((await profile(s, fresh)).status, 200);
    const res = await fetch(`${s.adminUrl}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refreshToken: u.body["refresh_token"] }),
    });
    assert.is(res.status, 200);
    await res.body?.cancel();
    assertInvalidToken(await profile(s, fresh));
    assert.is(s.state.stats().profile, 7);
  }, { clients: [PROFILE_CLIENT] });
});

test("profile: any method but GET is 405; a token given twice is 400", async () => {
  await withServer(async (s, clock) => {
    const t = await link(s, clock, "profile");
    const access = t.body["access_token"] as string;
    for (const method of ["POST", "PUT", "DELETE"]) {
      const a = await profile(s, access, { method });
      assert.is(a.status, 405, method);
      assert.is(a.headers.get("allow"), "GET");
      assert.is(a.body["error"], "invalid_request");
    }
    const twice = await fetch(`${s.profileUrl}?access_token=x`, {
      headers: { authorization: `Bearer ${access}` },
    });
    assert.is(twice.status, 400);
    assert.is((await twice.json()).error, "invalid_request");
    assert.is(s.state.stats().profile, 4);
  }, { clients: [PROFILE_CLIENT] });
});

test("users: the page and auto-approve approve as the default user; POST /_admin/user changes it", async () => {
  await withServer(async (s, clock) => {
    const admin = (method: string, route: string, body?: unknown) =>
      fetch(`${s.adminUrl}${route}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    assert.equal((await admin("GET", "/user")).body, { userId: DEFAULT_USER_ID });
    assert.equal((await admin("POST", "/user", { userId: BOB })).body, { userId: BOB });
    assert.is(s.state.defaultUserId, BOB);
    for (const bad of [{}, { userId: "amzn1.account.short" }, { userId: BOB.toLowerCase() }]) {
      const r = await admin("POST", "/user", bad);
      assert.is(r.status, 400, JSON.stringify(bad));
      assert.match(r.body.error_description, "user id");
    }

    // The verification page: look the code up, then approve with the nonce it shows.
    const viaPage = await link(s, clock, "profile:user_id", async (userCode) => {
      const form = { "content-type": "application/x-www-form-urlencoded" };
      const html = await fetch(s.verificationUrl, {
        method: "POST",
        headers: form,
        body: new URLSearchParams({ user_code: userCode }),
      }).then((r) => r.text());
      const nonce = /name="nonce" value="([^"]+)"/.exec(html)?.[1];
      assert.ok(nonce, html);
      const done = await fetch(`${s.verificationUrl}/confirm`, {
        method: "POST",
        headers: form,
        body: new URLSearchParams({ user_code: userCode, nonce, decision: "approve" }),
      }).then((r) => r.text());
      assert.match(done, 'data-result="approved"');
    });
    const a = await profile(s, viaPage.body["access_token"] as string);
    assert.equal(a.body, { user_id: BOB });

    // The admin API names the user, or leaves it to the default.
    const named = await link(s, clock, "profile:user_id", async (userCode) => {
      assert.equal((await admin("POST", "/approve", { userCode, userId: ALICE })).body, {
        ok: true,
      });
    });
    assert.equal((await profile(s, named.body["access_token"] as string)).body, {
      user_id: ALICE,
    });
    const pair = await lwaCodepair(s);
    const bad = await admin("POST", "/approve", {
      userCode: pair.body["user_code"],
      userId: "someone",
    });
    assert.is(bad.status, 400);
    assert.equal(s.state.pending().length, 1, "a bad user id approves nothing");
    assert.throws(() => s.state.approve(pair.body["user_code"] as string, "x"), /user id/);

    await admin("POST", "/auto-approve", { enabled: true });
    s.state.defaultUserId = ALICE;
    const auto = await link(s, clock, "profile:user_id", () => {});
    assert.equal((await profile(s, auto.body["access_token"] as string)).body, {
      user_id: ALICE,
    });
  }, { clients: [PROFILE_CLIENT] });
});

test("users: a defaultUserId option must have LWA's shape", async () => {
  await withServer(async (s, clock) => {
    const t = await link(s, clock, "profile:user_id");
    assert.equal((await profile(s, t.body["access_token"] as string)).body, { user_id: BOB });
    assert.throws(() => {
      s.state.defaultUserId = "amzn1.account.";
    }, /user id/);
    assert.is(s.state.defaultUserId, BOB);
  }, { clients: [PROFILE_CLIENT], defaultUserId: BOB });
});

test("profile is served for the RFC 8628 dialect's tokens too", async () => {
  await withServer(async (s, clock) => {
    const pair = await post(s.rfc8628.codepairUrl, { client_id: CLIENT, scope: "profile" });
    s.state.approve(pair.body["user_code"] as string, BOB);
    await clock.advance(5000);
    const t = await post(s.rfc8628.tokenUrl, {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      device_code: pair.body["device_code"] as string,
      client_id: CLIENT,
    });
    assert.is(t.status, 200);
    assert.is((await profile(s, t.body["access_token"] as string)).body["user_id"], BOB);
    assertError(await post(s.rfc8628.tokenUrl, { grant_type: "x" }), "unsupported_grant_type");
  }, { clients: [PROFILE_CLIENT] });
});

test.run();
