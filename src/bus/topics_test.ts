import { test } from "uvu";
import * as assert from "uvu/assert";
import { systemClock } from "../clock.ts";
import { parseConfig } from "../config.ts";
import { isLinkdError } from "../errors.ts";
import { connectBus } from "./bus.ts";
import { MAX_PREFIX_CHARS, prefixProblem } from "./topics.ts";

const CANDIDATES = [
  "linkd",
  "home/kitchen/linkd",
  "a/b-c/d_e",
  "p".repeat(64),
  "p".repeat(65),
  "p".repeat(100),
  "p".repeat(200),
  "",
  "a/+/b",
  "a/#",
  "/linkd",
  "linkd/",
  "a//b",
  "$SYS/x",
  "a\u0000b",
  "a\nb",
  "ünï/cödé",
];

/** Whether the configuration takes `prefix` as bus.prefix. */
function configTakes(prefix: string): boolean {
  try {
    return parseConfig(JSON.stringify({ bus: { prefix } }), "/c.json").bus.prefix === prefix;
  } catch (e) {
    assert.ok(isLinkdError(e, "CONFIG"), String(e));
    assert.ok(e.message.includes('"bus.prefix"'), e.message);
    return false;
  }
}

/** Whether the bus itself takes `prefix` (it refuses a bad one before connecting). */
async function busTakes(prefix: string): Promise<boolean> {
  try {
    await connectBus({
      url: "mqtt://127.0.0.1:1",
      prefix,
      clock: systemClock,
      random: Math.random,
      signal: AbortSignal.abort(), // never connects: only the checks run
      log: () => {},
    });
    assert.unreachable("an aborted connectBus never resolves");
  } catch (e) {
    if (e instanceof TypeError) return false;
    return true; // aborted: the options were taken
  }
  return true;
}

test("prefixProblem(): 1 to 64 characters of topic levels, no wildcard, $, control or empty level", () => {
  assert.is(MAX_PREFIX_CHARS, 64);
  assert.is(prefixProblem("linkd"), null);
  assert.is(prefixProblem("p".repeat(64)), null);
  assert.is(prefixProblem("p".repeat(100)), "at most 64 characters, not 100");
  assert.is(prefixProblem("a//b"), "no empty topic level");
  assert.is(prefixProblem("a\u0001b"), "no control characters");
});

// One owner: config.ts once took 200 characters while the bus refused 65, and `linkd run`
// crashed with exit 70 on a prefix the config had accepted.
test("the configuration and the bus take exactly the same prefixes", async () => {
  for (const p of CANDIDATES) {
    const want = prefixProblem(p) === null;
    assert.is(configTakes(p), want, `config and ${JSON.stringify(p)}`);
    assert.is(await busTakes(p), want, `bus and ${JSON.stringify(p)}`);
  }
  assert.not.ok(configTakes("p".repeat(100)), "100 characters: refused at config load");
});

test.run();
