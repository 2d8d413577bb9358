import { test } from "uvu";
import * as assert from "uvu/assert";
import { Backoff, JITTER, RETRY_TABLE_S, worstCaseTries } from "./backoff.ts";
import { prng } from "../../test/support/random.ts";

test("Backoff.next() follows the table with jitter within ±50 %", () => {
  const b = new Backoff(prng(1));
  for (let i = 0; i < 20; i++) {
    const base = RETRY_TABLE_S[Math.min(i, RETRY_TABLE_S.length - 1)]! * 1000;
    const d = b.next();
    assert.ok(
      d >= base * (1 - JITTER) - 1 && d <= base * (1 + JITTER) + 1,
      `try ${i}: ${d} for ${base}`,
    );
  }
  assert.is(b.attempts, 20);
});

test("Backoff.next() starts with an immediate retry, then the Alexa SDK's steps", () => {
  const low = new Backoff(() => 0.5); // no jitter
  assert.equal(Array.from({ length: 9 }, () => low.next()), [
    0,
    1000,
    2000,
    4000,
    10000,
    30000,
    60000,
    120000,
    300000,
  ]);
  assert.is(low.next(), 300000, "stays at the last step");
});

test("Backoff.reset() goes back to the first step", () => {
  const b = new Backoff(() => 0.5);
  b.next();
  b.next();
  b.next();
  b.reset();
  assert.is(b.attempts, 0);
  assert.is(b.next(), 0);
});

test("Backoff: at most 31 tries in an hour whatever the jitter, and the bound is tight", () => {
  const hour = 3600_000;
  const bound = worstCaseTries(hour);
  assert.is(bound, 31);
  // Every jitter draw at its lowest makes exactly that many tries in the hour.
  const b = new Backoff(() => 0);
  let t = 0;
  let tries = 0;
  for (;;) {
    const d = b.next();
    if (t + d > hour) break;
    t += d;
    tries++;
  }
  assert.is(tries, bound);
  // Random jitter never does more.
  for (let seed = 1; seed <= 200; seed++) {
    const r = new Backoff(prng(seed));
    let at = 0;
    let n = 0;
    for (;;) {
      const d = r.next();
      if (at + d > hour) break;
      at += d;
      n++;
    }
    assert.ok(n <= bound, `seed ${seed}: ${n} tries`);
  }
});

test.run();
