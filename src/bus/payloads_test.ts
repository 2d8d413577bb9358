import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeCbor } from "../cbor.ts";
import { FakeClock } from "../clock.ts";
import {
  BusCode,
  checkPlainCbor,
  MAX_COMMAND_BYTES,
  pairingPayload,
  parseCommand,
  replyPayload,
  statePayload,
  tokenPayload,
} from "./payloads.ts";
import { TokenBucket } from "./rate_limit.ts";
import { unhex } from "./_testing.ts";

function codeOf(r: ReturnType<typeof parseCommand>): string {
  return r.ok ? "ok" : r.error.code;
}

test("parseCommand() takes an empty payload and an empty map as no options", () => {
  assert.equal(parseCommand("pair", new Uint8Array(0)), { ok: true, options: {} });
  assert.equal(parseCommand("token", encodeCbor({})), { ok: true, options: {} });
});

test("parseCommand() keeps known options and ignores unknown keys", () => {
  const r = parseCommand("pair", encodeCbor({ lang: "de-DE", future: [1, 2, { x: null }] }));
  assert.equal(r, { ok: true, options: { lang: "de-DE" } });
  assert.equal(parseCommand("logout", encodeCbor({ lang: 5 })), { ok: true, options: {} });
});

test("parseCommand() refuses a known option of the wrong type, naming it", () => {
  const r = parseCommand("pair", encodeCbor({ lang: 42 }));
  assert.is(codeOf(r), BusCode.BAD_REQUEST);
  assert.ok(!r.ok && r.error.message.includes('"lang"'), JSON.stringify(r));
  assert.is(codeOf(parseCommand("pair", encodeCbor({ lang: "x".repeat(65) }))), "bad_request");
});

test("parseCommand() refuses payloads over MAX_COMMAND_BYTES unread", () => {
  const big = new Uint8Array(MAX_COMMAND_BYTES + 1).fill(0xff);
  const r = parseCommand("token", big);
  assert.is(codeOf(r), BusCode.TOO_LARGE);
  const atBound = encodeCbor({ pad: "x".repeat(MAX_COMMAND_BYTES - 20) });
  assert.ok(atBound.length <= MAX_COMMAND_BYTES);
  assert.is(codeOf(parseCommand("token", atBound)), "ok");
});

test("parseCommand() refuses malformed CBOR as malformed", () => {
  for (
    const h of [
      "a1", // map of one, nothing in it
      "a16161", // key without value
      "a0a0", // two items
      "ff", // a lone break
      "a1617a7f", // indefinite text never ended
      "a1fc00", // reserved additional information
      "bf6161", // indefinite map never ended
      "a161611bffffffff", // truncated uint64
      "a16261ff01", // invalid UTF-8 in a key
      "9b7fffffffffffffff", // an array claiming 2^63 items
    ]
  ) {
    assert.is(codeOf(parseCommand("token", unhex(h))), BusCode.MALFORMED, h);
  }
});

test("parseCommand() refuses well-formed CBOR of the wrong shape as bad_request", () => {
  for (
    const [h, why] of [
      ["80", "an array"],
      ["6161", "a text string"],
      ["01", "a number"],
      ["f6", "null"],
      ["a10102", "an integer key"],
      ["a1410102", "a byte-string key"],
      ["a1f401", "a boolean key"],
      ["a16161c11a514b67b0", "a tagged value"],
      ["a16161f7", "undefined"],
      ["a16161f0", "a simple value"],
      ["a161618181818181818181818100", "nesting deeper than 8"],
      ["a16161a10102", "an integer key in a nested map"],
    ]
  ) {
    assert.is(codeOf(parseCommand("token", unhex(h!))), BusCode.BAD_REQUEST, why);
  }
});

test("checkPlainCbor() accepts what cbor2 and tinycbor write: floats, indefinite lengths", () => {
  assert.is(checkPlainCbor(unhex("a26161fb3ff8000000000000616280")), null);
  assert.is(checkPlainCbor(unhex("bf6161f561629fff61637f6161ffff")), null);
  assert.is(checkPlainCbor(unhex("a16161f93c00")), null);
});

test("statePayload() and friends carry the contract's keys only", () => {
  const s = { state: "linked" as const, since: 5, scopes: ["a"], secret: "x" };
  assert.equal(statePayload(s), { state: "linked", since: 5, scopes: ["a"] });
  const e = statePayload({
    state: "error",
    since: 1,
    scopes: [],
    error: { code: "network", message: "m" },
  });
  assert.equal(e.error, { code: "network", message: "m" });
  const p = pairingPayload({
    user_code: "ABCD",
    verification_uri: "u",
    expires_at: 1,
    expires_in: 2,
    interval: 5,
  });
  assert.equal(Object.keys(p), [
    "user_code",
    "verification_uri",
    "expires_at",
    "expires_in",
    "interval",
  ]);
  const t = {
    access_token: "t",
    token_type: "bearer",
    scopes: ["a"],
    expires_at: 1,
    expires_in: 2,
    refresh_token: "never",
  };
  assert.not.ok("refresh_token" in tokenPayload(t));
  assert.not.ok("refresh_token" in replyPayload(t));
  assert.equal(replyPayload({ ok: false, error: { code: "c", message: "m" } }), {
    ok: false,
    error: { code: "c", message: "m" },
  });
});

test("TokenBucket allows a burst, then refills at perMinute on the monotonic clock", async () => {
  const clock = new FakeClock();
  const b = new TokenBucket({ burst: 3, perMinute: 60 }, () => clock.monotonic());
  assert.equal([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  await clock.advance(999);
  assert.is(b.take(), false);
  await clock.advance(1);
  assert.is(b.take(), true);
  assert.is(b.take(), false);
  await clock.advance(3_600_000);
  assert.equal([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  assert.throws(() => new TokenBucket({ burst: 0, perMinute: 1 }, () => 0), TypeError);
});

test.run();
