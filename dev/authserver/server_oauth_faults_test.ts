/**
 * The faults that reproduce Amazon's own refusals, over real HTTP: oauth_error (any OAuth error,
 * `servererror` included), scope_page (the HTML unknown-scope page), the narrower fault paths
 * `poll` and `refresh`, and `POST /_admin/forget` (LWA losing a code pair).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  assertError,
  CLIENT,
  lwaCodepair,
  lwaPoll,
  refresh,
  rfcCodepair,
  rfcPoll,
  withServer,
} from "../../test/support/authserver.ts";
import type { AuthServer } from "./server.ts";

async function admin(s: AuthServer, method: string, route: string, body?: unknown) {
  const res = await fetch(`${s.adminUrl}${route}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/** A linked LWA device's tokens and its (redeemed) code pair. */
async function link(s: AuthServer, clock: { advance(ms: number): Promise<void> }) {
  const pair = await lwaCodepair(s);
  s.state.approve(pair.body["user_code"] as string);
  await clock.advance(5000);
  const tokens = await lwaPoll(s, pair);
  assert.is(tokens.status, 200);
  return { pair, tokens };
}

test("fault oauth_error answers that OAuth error as JSON, with LWA's words or the given ones", async () => {
  await withServer(async (s) => {
    const set = await admin(s, "POST", "/fault", {
      kind: "oauth_error",
      error: "servererror",
      count: 2,
    });
    assert.equal(set.body, {
      fault: { kind: "oauth_error", error: "servererror", count: 2 },
      left: 2,
    });
    for (let i = 0; i < 2; i++) {
      const a = await lwaCodepair(s);
      assertError(a, "servererror", 400);
      assert.is(a.body["error_description"], "There was an internal server error");
    }
    assert.is((await lwaCodepair(s)).status, 200);

    s.state.setFault({
      kind: "oauth_error",
      error: "temporarily_weird",
      description: "Something odd",
      status: 503,
      count: 1,
    });
    const weird = await rfcCodepair(s);
    assert.equal(weird.body, { error: "temporarily_weird", error_description: "Something odd" });
    assert.is(weird.status, 503);
    assert.match(weird.headers.get("content-type") ?? "", "application/json");

    s.state.setFault({ kind: "oauth_error", error: "invalid_grant", description: null, count: 1 });
    const bare = await lwaCodepair(s);
    assert.equal(bare.body, { error: "invalid_grant" });
    assert.is(bare.status, 400);
    assert.is(s.state.fault(), null);
  });
});

test("fault oauth_error on path poll answers device-code polls only: invalid_code_pair", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    const pair = await lwaCodepair(s);
    await admin(s, "POST", "/fault", {
      kind: "oauth_error",
      error: "invalid_code_pair",
      path: "poll",
    });
    await clock.advance(5000);
    const a = await lwaPoll(s, pair);
    assertError(a, "invalid_code_pair");
    assert.is(a.body["error_description"], "The code pair given is invalid or expired");
    // Neither a code pair nor a refresh is on the path.
    assert.is((await lwaCodepair(s)).status, 200);
    assert.is((await refresh(s.lwa.tokenUrl, tokens.body["refresh_token"] as string)).status, 200);
    assert.ok(s.state.fault() !== null);
  });
});

test("fault path refresh hits refresh-grant requests only; token still means both", async () => {
  await withServer(async (s, clock) => {
    const { tokens } = await link(s, clock);
    let r = tokens.body["refresh_token"] as string;
    s.state.setFault({ kind: "oauth_error", error: "invalid_grant", path: "refresh", count: 1 });
    const pair = await lwaCodepair(s);
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "authorization_pending"); // a poll: not on the path
    assertError(await refresh(s.lwa.tokenUrl, r), "invalid_grant");
    assert.is(s.state.fault(), null);
    const ok = await refresh(s.lwa.tokenUrl, r);
    assert.is(ok.status, 200);
    r = ok.body["refresh_token"] as string;

    // Every other kind takes the narrower paths too.
    s.state.setFault({ kind: "status", status: 500, path: "refresh" });
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "authorization_pending");
    assertError(await refresh(s.lwa.tokenUrl, r), "server_error", 500);
    s.state.setFault({ kind: "status", status: 500, path: "poll" });
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "server_error", 500);
    assert.is((await refresh(s.lwa.tokenUrl, r)).status, 200);
    // slow_down is for polls: path poll and token work, others are refused.
    s.state.setFault({ kind: "slow_down", path: "poll", count: 1 });
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "slow_down");
    assert.throws(() => s.state.setFault({ kind: "slow_down", path: "refresh" } as never), /path/);

    s.state.setFault({ kind: "status", status: 502, path: "token", count: 2 });
    for (const grant of ["device_code", "refresh_token"]) {
      const res = await fetch(s.lwa.tokenUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: grant, refresh_token: r, client_id: CLIENT }),
      });
      assert.is(res.status, 502, grant);
      assert.match(await res.text(), "502 Bad Gateway");
    }
    assert.is(s.state.fault(), null);
  });
});

test("fault scope_page answers Amazon's HTML unknown-scope page whatever the client's style", async () => {
  await withServer(async (s) => {
    await admin(s, "POST", "/fault", { kind: "scope_page", count: 1, path: "codepair" });
    const res = await fetch(s.lwa.codepairUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "response_type=device_code&client_id=x&scope=alexa%3Aall",
    });
    const html = await res.text();
    assert.is(res.status, 400);
    assert.is(res.headers.get("content-type"), "text/html;charset=UTF-8");
    assert.match(html, "<title>400 Bad Request - An unknown scope was requested</title>");
    assert.is((await lwaCodepair(s)).status, 200);
    assert.equal(s.state.clients()[0]!.refusalStyle, "json");
  });
});

test("POST /_admin/forget: the next poll of a forgotten code is invalid_code_pair (lwa)", async () => {
  await withServer(async (s, clock) => {
    const one = await lwaCodepair(s);
    const two = await lwaCodepair(s);
    const three = await rfcCodepair(s);
    const { pair: redeemed } = await link(s, clock);
    s.state.approve(two.body["user_code"] as string);
    const code = (one.body["user_code"] as string).toLowerCase();
    assert.equal((await admin(s, "POST", "/forget", { userCode: code })).body, { forgotten: 1 });
    assert.is((await admin(s, "POST", "/forget", { userCode: code })).status, 404);
    assert.is((await admin(s, "POST", "/forget", { userCode: 5 })).status, 400);
    await clock.advance(5000);
    const gone = await lwaPoll(s, one);
    assertError(gone, "invalid_code_pair");
    assert.is(gone.body["error_description"], "The code pair given is invalid or expired");
    assert.not.ok(s.state.approve(one.body["user_code"] as string));
    // The page no longer knows it either.
    const page = await fetch(s.verificationUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ user_code: code }),
    }).then((r) => r.text());
    assert.match(page, "That code is not valid");

    // Without userCode: every code not yet redeemed, approved ones too.
    assert.equal((await admin(s, "POST", "/forget", {})).body, { forgotten: 2 });
    assert.equal(s.state.pending(), []);
    await clock.advance(5000);
    assertError(await lwaPoll(s, two), "invalid_code_pair");
    assertError(await rfcPoll(s, three), "invalid_grant"); // rfc8628's default
    assertError(await lwaPoll(s, redeemed), "invalid_grant"); // redeemed: kept, used once
    assert.equal((await admin(s, "POST", "/forget", null)).body, { forgotten: 0 });
  });
});

test("validateFault checks oauth_error and scope_page, and refuses unknown keys", async () => {
  await withServer(async (s) => {
    const bad: [unknown, RegExp][] = [
      [{ kind: "oauth_error" }, /error/],
      [{ kind: "oauth_error", error: "" }, /error/],
      [{ kind: "oauth_error", error: "with space" }, /error/],
      [{ kind: "oauth_error", error: 'q"uote' }, /error/],
      [{ kind: "oauth_error", error: "x", status: 302 }, /status/],
      [{ kind: "oauth_error", error: "x", status: 700 }, /status/],
      [{ kind: "oauth_error", error: "x", description: 5 }, /description/],
      [{ kind: "oauth_error", error: "x", path: "page" }, /path/],
      [{ kind: "scope_page", error: "x" }, /no key error/],
      [{ kind: "hang", staus: 500 }, /no key staus/],
      [[], /object/],
    ];
    for (const [fault, why] of bad) {
      assert.throws(() => s.state.setFault(fault as never), why, JSON.stringify(fault));
      const r = await admin(s, "POST", "/fault", fault);
      assert.is(r.status, 400, JSON.stringify(fault));
      assert.match(r.body["error_description"] as string, why);
    }
    assert.is(s.state.fault(), null);
    for (const path of ["codepair", "token", "poll", "refresh"] as const) {
      s.state.setFault({ kind: "scope_page", path });
      s.state.setFault({ kind: "oauth_error", error: "servererror", status: 500, path });
    }
    assert.equal(s.state.fault(), {
      fault: { kind: "oauth_error", error: "servererror", status: 500, path: "refresh" },
      left: null,
    });
  });
});

test.run();
