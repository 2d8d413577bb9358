import { test } from "uvu";
import * as assert from "uvu/assert";
import { isLoopback } from "./_http.ts";
import {
  assertError,
  CLIENT,
  lwaCodepair,
  lwaPoll,
  refresh,
  withServer,
} from "../../test/support/authserver.ts";
import type { AuthServer } from "./server.ts";

async function adminCall(
  s: AuthServer,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.adminUrl}${route}`, {
    method,
    ...(body !== undefined
      ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }
      : {}),
  });
  return { status: res.status, body: await res.json() };
}

test("admin GET /info names every URL", async () => {
  await withServer(async (s) => {
    const a = await adminCall(s, "GET", "/info");
    assert.is(a.status, 200);
    assert.equal(a.body, {
      url: s.url,
      lwa: s.lwa,
      rfc8628: s.rfc8628,
      verificationUrl: s.verificationUrl,
      adminUrl: s.adminUrl,
      profileUrl: s.profileUrl,
    });
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.is(s.lwa.codepairUrl, `${s.url}/auth/O2/create/codepair`);
    assert.is(s.lwa.tokenUrl, `${s.url}/auth/O2/token`);
    assert.is(s.rfc8628.codepairUrl, `${s.url}/oauth2/device_authorization`);
    assert.is(s.rfc8628.tokenUrl, `${s.url}/oauth2/token`);
    assert.is(s.verificationUrl, `${s.url}/code`);
    assert.is(s.profileUrl, `${s.url}/user/profile`);
  });
});

test("admin clients: list with defaults, add, refuse a bad one", async () => {
  await withServer(async (s) => {
    const list = await adminCall(s, "GET", "/clients");
    assert.equal(list.body["clients"], [{
      clientId: CLIENT,
      name: CLIENT,
      type: "device",
      enabledScopes: ["alexa:all"],
      interval: 5,
      codeLifetime: 600,
      tokenLifetime: 3600,
      rotateRefresh: true,
      refreshGrace: 60,
      accessTokenLength: 1000,
      refreshTokenLength: 1000,
      refusalStyle: "json",
      refreshRefusal: null,
      expiresInStyle: "number",
      unknownCodeError: null,
    }]);
    const added = await adminCall(s, "POST", "/clients", {
      clientId: "web1",
      type: "web",
      interval: 2,
    });
    assert.is(added.status, 200);
    assert.is((added.body["client"] as Record<string, unknown>)["interval"], 2);
    assert.is(s.state.clients().length, 2);
    for (
      const bad of [{}, { clientId: "x", type: "tv" }, { clientId: "x", interval: -1 }, {
        clientId: "x",
        enabledScopes: "alexa:all",
      }, { clientId: "x", surprise: 1 }]
    ) {
      const r = await adminCall(s, "POST", "/clients", bad);
      assert.is(r.status, 400, JSON.stringify(bad));
      assert.is(r.body["error"], "invalid_request");
    }
  });
});

test("admin pending, approve and deny drive a link; unknown codes are 404", async () => {
  await withServer(async (s, clock) => {
    const one = await lwaCodepair(s);
    const two = await lwaCodepair(s);
    const pending = await adminCall(s, "GET", "/pending");
    assert.equal(
      (pending.body["pending"] as { userCode: string }[]).map((p) => p.userCode),
      [one.body["user_code"], two.body["user_code"]],
    );
    const approved: string[] = [];
    s.state.onApprove = (p) => approved.push(p.userCode);
    const code = (one.body["user_code"] as string).toLowerCase();
    assert.equal((await adminCall(s, "POST", "/approve", { userCode: code })).body, { ok: true });
    assert.equal(approved, [one.body["user_code"]]);
    assert.is((await adminCall(s, "POST", "/approve", { userCode: code })).status, 404);
    const userCode = two.body["user_code"];
    assert.is((await adminCall(s, "POST", "/deny", { userCode })).status, 200);
    assert.is((await adminCall(s, "POST", "/deny", {})).status, 400);
    await clock.advance(5000);
    assert.is((await lwaPoll(s, one)).status, 200);
    assertError(await lwaPoll(s, two), "access_denied");
    assert.equal((await adminCall(s, "GET", "/pending")).body["pending"], []);
  });
});

test("admin revoke by refresh token and by client; introspect sees it", async () => {
  await withServer(async (s, clock) => {
    const tokens = [];
    for (let i = 0; i < 3; i++) {
      const pair = await lwaCodepair(s);
      s.state.approve(pair.body["user_code"] as string);
      await clock.advance(5000);
      tokens.push((await lwaPoll(s, pair)).body);
    }
    const access = tokens[0]!["access_token"];
    assert.is(
      (await adminCall(s, "POST", "/introspect", { accessToken: access })).body["active"],
      true,
    );
    const one = await adminCall(s, "POST", "/revoke", {
      refreshToken: tokens[0]!["refresh_token"],
    });
    assert.equal(one.body, { revoked: 1 });
    assert.equal((await adminCall(s, "POST", "/introspect", { accessToken: access })).body, {
      active: false,
    });
    assertError(
      await refresh(s.lwa.tokenUrl, tokens[0]!["refresh_token"] as string),
      "invalid_grant",
    );
    assert.is((await adminCall(s, "POST", "/revoke", { refreshToken: "Atzr|x" })).status, 404);
    assert.equal((await adminCall(s, "POST", "/revoke", { clientId: CLIENT })).body, {
      revoked: 2,
    });
    assertError(
      await refresh(s.lwa.tokenUrl, tokens[2]!["refresh_token"] as string),
      "invalid_grant",
    );
    assert.is((await adminCall(s, "POST", "/revoke", {})).status, 400);
  });
});

test("admin scope enables and disables a scope for a client", async () => {
  await withServer(async (s) => {
    const scope = "music::library:read";
    assertError(await lwaCodepair(s, { scope: `alexa:all ${scope}` }), "invalid_scope");
    const on = await adminCall(s, "POST", "/scope", { clientId: CLIENT, scope });
    assert.equal((on.body["client"] as Record<string, unknown>)["enabledScopes"], [
      "alexa:all",
      scope,
    ]);
    assert.is((await lwaCodepair(s, { scope: `alexa:all ${scope}` })).status, 200);
    await adminCall(s, "POST", "/scope", { clientId: CLIENT, scope, enabled: false });
    assertError(await lwaCodepair(s, { scope: `alexa:all ${scope}` }), "invalid_scope");
    assert.is((await adminCall(s, "POST", "/scope", { clientId: "nobody", scope })).status, 400);
  });
});

test("admin fault: set (bare or wrapped), read, clear, refuse a bad one", async () => {
  await withServer(async (s) => {
    const set = await adminCall(s, "POST", "/fault", { kind: "status", status: 503, count: 2 });
    assert.equal(set.body, { fault: { kind: "status", status: 503, count: 2 }, left: 2 });
    const hit = await fetch(s.lwa.codepairUrl, { method: "POST" });
    assert.is(hit.status, 503);
    await hit.body?.cancel();
    assert.is((await adminCall(s, "GET", "/fault")).body["left"], 1);
    assert.equal((await adminCall(s, "POST", "/fault", null)).body, { fault: null, left: null });
    await adminCall(s, "POST", "/fault", { fault: { kind: "hang" } });
    assert.equal(s.state.fault(), { fault: { kind: "hang" }, left: null });
    await adminCall(s, "DELETE", "/fault");
    assert.is(s.state.fault(), null);
    const bad = await adminCall(s, "POST", "/fault", { kind: "status", status: 99 });
    assert.is(bad.status, 400);
    assert.match(bad.body["error_description"] as string, "status");
  });
});

test("admin stats count requests by kind and path; DELETE resets them", async () => {
  await withServer(async (s) => {
    await lwaCodepair(s);
    await fetch(`${s.url}/code`).then((r) => r.text());
    await fetch(`${s.url}/nowhere`).then((r) => r.text());
    await adminCall(s, "GET", "/info"); // admin requests are not counted
    const st = await adminCall(s, "GET", "/stats");
    assert.equal(st.body, {
      codepair: 1,
      token: 0,
      refresh: 0,
      page: 1,
      profile: 0,
      byPath: { "/auth/O2/create/codepair": 1, "/code": 1, "/nowhere": 1 },
    });
    const reset = await adminCall(s, "DELETE", "/stats");
    assert.equal(reset.body, {
      codepair: 0,
      token: 0,
      refresh: 0,
      page: 0,
      profile: 0,
      byPath: {},
    });
  });
});

test("admin auto-approve approves new codes at once", async () => {
  await withServer(async (s, clock) => {
    assert.equal((await adminCall(s, "POST", "/auto-approve", { enabled: true })).body, {
      autoApprove: true,
    });
    const pair = await lwaCodepair(s);
    await clock.advance(5000);
    assert.is((await lwaPoll(s, pair)).status, 200);
    assert.is((await adminCall(s, "POST", "/auto-approve", {})).status, 400);
  });
});

test("admin refuses non-JSON bodies and unknown routes", async () => {
  await withServer(async (s) => {
    const form = await fetch(`${s.adminUrl}/approve`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "userCode=ABC",
    });
    assert.is(form.status, 415);
    await form.body?.cancel();
    const broken = await fetch(`${s.adminUrl}/approve`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    assert.is(broken.status, 400);
    await broken.body?.cancel();
    assert.is((await adminCall(s, "GET", "/nope")).status, 404);
    assert.is((await adminCall(s, "PUT", "/stats")).status, 404);
  });
});

test("isLoopback() accepts 127/8, ::1 and mapped loopback, nothing else", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.ok(isLoopback(h), h);
  }
  for (const h of ["10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1", "128.0.0.1", ""]) {
    assert.not.ok(isLoopback(h), h);
  }
});

test("the root page lists the endpoints", async () => {
  await withServer(async (s) => {
    const html = await fetch(`${s.url}/`).then((r) => r.text());
    for (const u of [s.lwa.codepairUrl, s.lwa.tokenUrl, s.rfc8628.codepairUrl, s.verificationUrl]) {
      assert.ok(html.includes(u), u);
    }
    const missing = await fetch(`${s.url}/auth/O2/nothing`, { method: "POST" });
    assert.is(missing.status, 404);
    assert.is((await missing.json()).error, "not_found");
  });
});

test.run();
