/** collectSoon() and afterEachToken(): a collection after each token, only where V8 allows it. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { collectSoon } from "./gc.ts";
import { afterEachToken } from "./run.ts";
import type { AccessToken } from "../contract.ts";

const g = globalThis as { gc?: () => void };

test("collectSoon() calls gc once after the delay, coalesces calls, and is a no-op without it", async () => {
  const saved = g.gc;
  try {
    delete g.gc;
    collectSoon(); // no --expose-gc: nothing to call, nothing thrown
    let calls = 0;
    g.gc = () => calls++;
    collectSoon(10);
    collectSoon(10);
    collectSoon(10);
    assert.is(calls, 0, "not synchronously: the publish in progress goes first");
    await new Promise<void>((r) => AbortSignal.timeout(40).addEventListener("abort", () => r()));
    assert.is(calls, 1, "three asks while one was pending: one collection");
    g.gc = () => {
      throw new Error("boom");
    };
    collectSoon(10); // a throwing gc is swallowed
    await new Promise<void>((r) => AbortSignal.timeout(20).addEventListener("abort", () => r()));
  } finally {
    if (saved) g.gc = saved;
    else delete g.gc;
  }
});

test("afterEachToken() passes every event on and runs `then` after each token only", () => {
  const seen: string[] = [];
  const l = afterEachToken({
    state: (s) => seen.push(`state ${s.state}`),
    token: (t) => seen.push(`token ${t.token_type}`),
    capabilities: () => seen.push("caps"),
  }, () => seen.push("then"));
  l.state!({ state: "linked", since: 1, scopes: [] });
  l.token!({ token_type: "bearer" } as AccessToken);
  l.capabilities!({ granted: [], denied: [] });
  l.token!({ token_type: "bearer" } as AccessToken);
  assert.equal(seen, ["state linked", "token bearer", "then", "caps", "token bearer", "then"]);
});

test.run();
