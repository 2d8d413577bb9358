/**
 * ScopeProbe against a simulated server that refuses a set exactly when it holds a refused
 * scope: every refused subset of up to six scopes, under three suspicion orders.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ScopeProbe, type Suspicion } from "./scope_probe.ts";

interface Run {
  granted: readonly string[];
  refused: string[];
  requests: number;
  pairs: number;
  sets: string[];
}

function run(wanted: string[], refused: Set<string>, suspicion: Suspicion): Run {
  const probe = new ScopeProbe<string>(wanted, suspicion);
  const sets: string[] = [];
  let pairs = 0;
  for (let set = probe.next(); set !== null; set = probe.next()) {
    sets.push([...set].sort().join(" "));
    assert.ok(sets.length <= 2 * wanted.length + 1, `too many requests: ${sets.join(" | ")}`);
    const bad = set.filter((s) => refused.has(s));
    if (bad.length === 0) {
      pairs++;
      probe.accept(set);
    } else probe.refuse(set, `refused ${set.join(" ")}`);
  }
  const r = probe.result();
  return {
    granted: r.granted,
    refused: [...r.refused.keys()].sort(),
    requests: sets.length,
    pairs,
    sets,
  };
}

const laterFirst: Suspicion = (_s, i) => i;
const earlierFirst: Suspicion = (_s, i) => -i;
const musicFirst: Suspicion = (s, i) => (s.startsWith("music::") ? 100 : 0) + i;

function subsets<T>(xs: T[]): T[][] {
  return xs.reduce<T[][]>((acc, x) => acc.concat(acc.map((a) => [...a, x])), [[]]);
}

test("ScopeProbe finds exactly the refused scopes, never asks a set twice, at most 2n+1 sets", () => {
  for (let n = 1; n <= 6; n++) {
    const wanted = Array.from({ length: n }, (_, i) => i === 0 ? "alexa:all" : `music::s${i}`);
    for (const refused of subsets(wanted)) {
      for (const suspicion of [laterFirst, earlierFirst, musicFirst]) {
        const r = run(wanted, new Set(refused), suspicion);
        const what = `wanted ${wanted.join(",")} refused ${refused.join(",")}`;
        assert.equal([...r.granted], wanted.filter((s) => !refused.includes(s)), what);
        assert.equal(r.refused, [...refused].sort(), what);
        assert.is(new Set(r.sets).size, r.sets.length, `a set asked twice: ${what}`);
        if (refused.length === 0) assert.is(r.requests, 1, what);
      }
    }
  }
});

test("ScopeProbe settles [alexa:all, music::library:read] with Music refused in two requests, one code pair", () => {
  const r = run(["alexa:all", "music::library:read"], new Set(["music::library:read"]), musicFirst);
  assert.equal(r.sets, ["alexa:all music::library:read", "alexa:all"]);
  assert.is(r.pairs, 1);
  assert.equal([...r.granted], ["alexa:all"]);
  assert.equal(r.refused, ["music::library:read"]);
});

test("ScopeProbe issues one code pair whenever the suspects are the refused scopes", () => {
  // Every Music scope refused (the closed beta), suspected first: one pair, n + 1 requests.
  for (let n = 2; n <= 6; n++) {
    const wanted = ["alexa:all", ...Array.from({ length: n - 1 }, (_, i) => `music::s${i}`)];
    const r = run(wanted, new Set(wanted.slice(1)), musicFirst);
    assert.is(r.pairs, 1, `n=${n}`);
    assert.ok(r.requests <= n + 1 + (n - 2), `n=${n}: ${r.requests}`);
    // One refused scope that is the most suspect: two requests.
    const one = run(wanted, new Set([wanted[n - 1]!]), musicFirst);
    assert.equal([one.requests, one.pairs], [2, 1], `n=${n}`);
  }
});

test("ScopeProbe reports what the confirming refusal said", () => {
  const probe = new ScopeProbe<string>(["a", "m"], laterFirst);
  assert.equal(probe.next(), ["a", "m"]);
  probe.refuse(["a", "m"], "first");
  assert.equal(probe.next(), ["a"]);
  probe.accept(["a"]);
  assert.is(probe.next(), null);
  assert.is(probe.result().refused.get("m"), "first");
  assert.is(probe.asked, 2);
});

test("ScopeProbe refuses an answer for a set it did not ask", () => {
  const probe = new ScopeProbe<string>(["a"], laterFirst);
  assert.throws(() => probe.accept(["a"]), /not asked/);
  probe.next();
  assert.throws(() => probe.next(), /no answer yet/);
});

test("ScopeProbe with everything refused ends with nothing granted", () => {
  const r = run(["a", "b", "c"], new Set(["a", "b", "c"]), laterFirst);
  assert.equal([...r.granted], []);
  assert.equal(r.refused, ["a", "b", "c"]);
  assert.is(r.pairs, 0);
});

test.run();
