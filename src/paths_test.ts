/** paths.ts against Node's own `path.posix`, the oracle, on tricky and random paths. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { posix } from "node:path";
import { dirname, resolve } from "./paths.ts";
import { mulberry32 } from "./prng.ts";

const tricky = [
  "",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "a/b",
  "a//b",
  "a/b//",
  "//a//b//",
  "/etc/linkd/linkd.json",
  "./x",
  "../x",
  "..",
  ".",
  "a/./b/../c",
  "/..",
  "/../..//x/.",
];

test("dirname() matches path.posix.dirname on tricky paths", () => {
  for (const p of tricky) assert.is(dirname(p), posix.dirname(p), JSON.stringify(p));
});

test("resolve() matches path.posix.resolve on tricky paths and pairs", () => {
  for (const p of tricky) {
    assert.is(resolve(p), posix.resolve(p), JSON.stringify(p));
    for (const q of tricky) {
      assert.is(resolve(p, q), posix.resolve(p, q), JSON.stringify([p, q]));
    }
  }
  assert.is(resolve(), posix.resolve());
});

test("dirname() and resolve() match path.posix on 20,000 random paths", () => {
  const rnd = mulberry32(7);
  const parts = ["a", "bb", ".", "..", "", "/", "//", "c.d", "..."];
  const make = () => {
    let s = "";
    const n = Math.floor(rnd() * 6);
    for (let i = 0; i < n; i++) {
      s += parts[Math.floor(rnd() * parts.length)]! + (rnd() < 0.7 ? "/" : "");
    }
    return s;
  };
  for (let i = 0; i < 10_000; i++) {
    const p = make();
    const q = make();
    assert.is(dirname(p), posix.dirname(p), JSON.stringify(p));
    assert.is(resolve(p, q), posix.resolve(p, q), JSON.stringify([p, q]));
  }
});

test.run();
