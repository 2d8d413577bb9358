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
  within,
  withServer,
} from "../../test/support/authserver.ts";
import { startAuthServer } from "./server.ts";

test("fault slow_down answers polls with slow_down for `count` polls and grows the interval", async () => {
  await withServer(async (s, clock) => {
    const pair = await lwaCodepair(s);
    s.state.setFault({ kind: "slow_down", count: 2 });
    await clock.advance(5000);
    assertError(await lwaPoll(s, pair), "slow_down"); // interval 10
    await clock.advance(10000);
    assertError(await lwaPoll(s, pair), "slow_down"); // interval 15
    assert.is(s.state.fault(), null);
    await clock.advance(10000);
    assertError(await lwaPoll(s, pair), "slow_down"); // 10 s < 15 s: a real one now
    await clock.advance(20000);
    assertError(await lwaPoll(s, pair), "authorization_pending");
  });
});

test("fault slow_down leaves code pairs and refreshes alone", async () => {
  await withServer(async (s, clock) => {
    const pair = await rfcCodepair(s);
    s.state.approve(pair.body["user_code"] as string);
    await clock.advance(5000);
    const t = await rfcPoll(s, pair);
    s.state.setFault({ kind: "slow_down" });
    assert.is((await rfcCodepair(s)).status, 200);
    const r = await refresh(s.rfc8628.tokenUrl, t.body["refresh_token"] as string);
    assert.is(r.status, 200);
    assert.ok(s.state.fault() !== null);
  });
});

test("fault status answers that status with a realistic body, `count` times, on its path only", async () => {
  await withServer(async (s) => {
    s.state.setFault({ kind: "status", status: 500, count: 2, path: "codepair" });
    for (let i = 0; i < 2; i++) {
      const a = await lwaCodepair(s);
      assertError(a, "server_error", 500);
      assert.is(s.state.fault()?.left ?? 0, 1 - i);
      // A token request is not on the fault's path.
      assertError(
        await lwaPoll(s, { ...a, body: { device_code: "x", user_code: "y" } }),
        "invalid_code_pair",
      );
    }
    assert.is((await lwaCodepair(s)).status, 200);

    s.state.setFault({ kind: "status", status: 503 });
    for (const url of [s.lwa.codepairUrl, s.lwa.tokenUrl, s.rfc8628.tokenUrl]) {
      const res = await fetch(url, { method: "POST" });
      const text = await res.text();
      assert.is(res.status, 503);
      assert.match(res.headers.get("content-type") ?? "", "text/html");
      assert.match(text, "503 Service Temporarily Unavailable");
    }
    s.state.setFault({ kind: "status", status: 429, count: 1 });
    const limited = await lwaCodepair(s);
    assert.is(limited.status, 429);
    assert.is(limited.headers.get("retry-after"), "1");
    s.state.setFault(null);
    assert.is((await lwaCodepair(s)).status, 200);
    assert.is(s.state.stats().codepair, 6);
  });
});

test("fault hang never answers: the client aborts after its timeout, and close() is prompt", async () => {
  const s = startAuthServer({ clients: [{ clientId: CLIENT }] });
  s.state.setFault({ kind: "hang", path: "token" });
  const t0 = performance.now();
  const err = await fetch(s.lwa.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "grant_type=device_code&device_code=x&user_code=y",
    signal: AbortSignal.timeout(300),
  }).then(() => null, (e) => e);
  const waited = performance.now() - t0;
  assert.ok(err instanceof DOMException, String(err));
  assert.is(err.name, "TimeoutError");
  assert.ok(waited >= 290, `aborted after ${waited} ms`);
  // The code-pair path is not hung.
  assert.is((await lwaCodepair(s)).status, 200);
  await within(1000, "close() after a client abort", () => s.close());
});

test("fault hang: close() returns promptly while a request is still hanging", async () => {
  const s = startAuthServer({ clients: [{ clientId: CLIENT }] });
  s.state.setFault({ kind: "hang" });
  let settled = false;
  let outcome = "";
  const pending = fetch(s.lwa.codepairUrl, { method: "POST" })
    .then((r) => r.text().then((t) => outcome = `answered ${r.status} ${t}`))
    .catch((e) => outcome = `failed ${(e as Error).name}`)
    .finally(() => settled = true);
  await new Promise((r) => setTimeout(r, 200));
  assert.not.ok(settled, "a hung request was answered");
  await within(1000, "close() with a hanging request", () => s.close());
  await within(1000, "the hung request to end", () => pending);
  assert.match(outcome, /^answered 503 /, outcome);
});

test("fault hang with a count hangs that many requests, then answers normally", async () => {
  await withServer(async (s) => {
    s.state.setFault({ kind: "hang", count: 1 });
    const hung = await fetch(s.lwa.codepairUrl, {
      method: "POST",
      signal: AbortSignal.timeout(200),
    }).then(() => "answered", (e) => (e as Error).name);
    assert.is(hung, "TimeoutError");
    assert.is((await lwaCodepair(s)).status, 200);
  });
});

test("fault malformed answers 200 with a body that is not JSON, or JSON of the wrong shape", async () => {
  await withServer(async (s) => {
    s.state.setFault({ kind: "malformed" });
    for (const url of [s.lwa.codepairUrl, s.rfc8628.tokenUrl]) {
      const res = await fetch(url, { method: "POST" });
      assert.is(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", "application/json");
      const text = await res.text();
      assert.throws(() => JSON.parse(text));
    }
    s.state.setFault({ kind: "malformed", shape: "wrong_shape", count: 2 });
    const pair = await lwaCodepair(s);
    assert.is(pair.status, 200);
    assert.type(pair.body["user_code"], "number");
    assert.is(pair.body["device_code"], null);
    const token = await lwaPoll(s, pair);
    assert.is(token.status, 200);
    assert.type(token.body["access_token"], "number");
    assert.is((await lwaCodepair(s)).body["device_code"] !== null, true);
  });
});

test("fault oversized streams a 200 JSON body of 1 MiB by default, without Content-Length", async () => {
  await withServer(async (s) => {
    s.state.setFault({ kind: "oversized", path: "token" });
    const res = await fetch(s.lwa.tokenUrl, { method: "POST" });
    assert.is(res.status, 200);
    assert.is(res.headers.get("content-length"), null);
    const text = await res.text();
    assert.is(text.length, 1024 * 1024);
    const body = JSON.parse(text);
    assert.match(body.access_token, /^Atza\|A+$/);

    s.state.setFault({ kind: "oversized", bytes: 5_000_000, count: 1 });
    const big = await fetch(s.lwa.codepairUrl, { method: "POST" });
    assert.is((await big.arrayBuffer()).byteLength, 5_000_000);
    assert.is((await lwaCodepair(s)).status, 200);
  });
});

test("fault oversized: a client that stops reading at its bound, and close(), end promptly", async () => {
  const s = startAuthServer({ clients: [{ clientId: CLIENT }] });
  s.state.setFault({ kind: "oversized", bytes: 64 * 1024 * 1024 });
  const res = await fetch(s.rfc8628.codepairUrl, { method: "POST" });
  const reader = res.body!.getReader();
  let got = 0;
  while (got < 100_000) {
    const { done, value } = await reader.read();
    if (done) break;
    got += value.length;
  }
  await reader.cancel();
  assert.ok(got >= 100_000);
  await within(1000, "close() after a cut-off stream", () => s.close());
});

test("fault oversized: close() is prompt while a client holds a stream it does not read", async () => {
  const s = startAuthServer({ clients: [{ clientId: CLIENT }] });
  s.state.setFault({ kind: "oversized", bytes: 256 * 1024 * 1024 });
  const res = await fetch(s.rfc8628.codepairUrl, { method: "POST" });
  assert.is(res.status, 200);
  await within(2000, "close() with an unread stream", () => s.close());
  await res.body?.cancel().catch(() => {});
});

test("setFault validates the fault", async () => {
  await withServer((s) => {
    assert.throws(() => s.state.setFault({ kind: "nope" } as never), /kind/);
    assert.throws(() => s.state.setFault({ kind: "status", status: 200 }), /status/);
    assert.throws(() => s.state.setFault({ kind: "hang", count: -1 }), /count/);
    assert.throws(() => s.state.setFault({ kind: "hang", path: "page" as never }), /path/);
    assert.throws(() => s.state.setFault({ kind: "oversized", bytes: 0 }), /bytes/);
    s.state.setFault({ kind: "hang", count: 0 });
    assert.is(s.state.fault(), null);
    return Promise.resolve();
  });
});

test.run();
