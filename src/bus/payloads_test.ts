/**
 * The bus payloads on their own: command parsing (every command, `cmd/refresh` included), the
 * contract's keys and nothing else on the way out, integer times as an independent decoder
 * (Python's cbor2) reads them, and the per-command token bucket.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeCbor } from "../cbor.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { BusCode, COMMANDS, REFRESH_COOLDOWN_MS } from "../contract.ts";
import { python, pythonHas, whenPython } from "../../test/support/python.ts";
import {
  checkPlainCbor,
  MAX_COMMAND_BYTES,
  pairingPayload,
  parseCommand,
  refreshReason,
  replyPayload,
  segmentPayload,
  statePayload,
  tokenPayload,
  wallMs,
  wholeSeconds,
} from "./payloads.ts";
import { DEFAULT_COMMAND_RATE, TokenBucket } from "./rate_limit.ts";
import { hex, unhex } from "../../test/support/bus.ts";

const withCbor2 = whenPython(test, await pythonHas("cbor2"), "the cbor2 payload checks");

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

// ── cmd/refresh ──────────────────────────────────────────────────────────────────────────────

test("parseCommand() knows cmd/refresh and its text option reason", () => {
  assert.ok(COMMANDS.includes("refresh"));
  assert.equal(parseCommand("refresh", new Uint8Array(0)), { ok: true, options: {} });
  assert.equal(parseCommand("refresh", encodeCbor({})), { ok: true, options: {} });
  assert.equal(parseCommand("refresh", encodeCbor({ reason: "rejected", later: 1 })), {
    ok: true,
    options: { reason: "rejected" },
  });
  // Any short text is taken (unknown reasons count as "rejected", see refreshReason()).
  assert.equal(parseCommand("refresh", encodeCbor({ reason: "music-401" })), {
    ok: true,
    options: { reason: "music-401" },
  });
  assert.equal(parseCommand("refresh", encodeCbor({ reason: "" })), {
    ok: true,
    options: { reason: "" },
  });
});

test("parseCommand() refuses a cmd/refresh reason that is not short text, naming it", () => {
  for (const reason of [7, true, null, ["rejected"], { why: "x" }, "x".repeat(65)]) {
    const r = parseCommand("refresh", encodeCbor({ reason }));
    assert.is(codeOf(r), BusCode.BAD_REQUEST, JSON.stringify(reason));
    assert.ok(!r.ok && r.error.message.includes('"reason"'), JSON.stringify(r));
  }
  assert.is(codeOf(parseCommand("refresh", unhex("a166726561736f6e4101"))), "bad_request");
  assert.is(codeOf(parseCommand("refresh", unhex("a166726561736f6e"))), "malformed");
});

test("refreshReason(): rejected, and anything else (absent, unknown, not text) taken as rejected", () => {
  for (const v of ["rejected", undefined, "", "music-401", "REJECTED", 5, null]) {
    assert.is(refreshReason(v), "rejected", String(v));
  }
});

test("DEFAULT_COMMAND_RATE lets a cmd/refresh flood through at least once per refresh cooldown", () => {
  // The controller refreshes at most once per REFRESH_COOLDOWN_MS; the bus must never be the
  // tighter limit: under a flood of 10 commands a second, one gets through in every window.
  assert.ok(DEFAULT_COMMAND_RATE.burst >= 2, "concurrent refresh commands from AVS and Music");
  assert.ok(60_000 / DEFAULT_COMMAND_RATE.perMinute < REFRESH_COOLDOWN_MS);
  let now = 0;
  const b = new TokenBucket(DEFAULT_COMMAND_RATE, () => now);
  const passedAt: number[] = [];
  for (; now < 10 * REFRESH_COOLDOWN_MS; now += 100) if (b.take()) passedAt.push(now);
  for (let w = 0; w < 10; w++) {
    const from = w * REFRESH_COOLDOWN_MS;
    assert.ok(
      passedAt.some((t) => t >= from && t < from + REFRESH_COOLDOWN_MS),
      `a refresh command passed in window ${w}`,
    );
  }
  assert.ok(passedAt.length < 200, "and a flood is still limited");
});

// ── account ──────────────────────────────────────────────────────────────────────────────────

const FP = "0123456789abcdef0123456789abcdef";
const FP2 = "fedcba9876543210fedcba9876543210";

test("statePayload() carries account {fingerprint, previous?} key by key", () => {
  const base = { state: "linked" as const, since: 5, scopes: ["alexa:all", "profile:user_id"] };
  assert.equal(statePayload({ ...base, account: { fingerprint: FP } }), {
    ...base,
    account: { fingerprint: FP },
  });
  const changed = statePayload({
    ...base,
    account: { fingerprint: FP, previous: FP2, user_id: "amzn1.account.X" } as never,
  });
  assert.equal(changed.account, { fingerprint: FP, previous: FP2 }, "nothing else of it");
  assert.equal(Object.keys(changed), ["state", "since", "scopes", "account"]);
  assert.not.ok("account" in statePayload(base), "absent until the account is known");
  // Hostile or broken values are left out, never thrown on.
  for (const account of [null, 5, "x", { fingerprint: 7 }, {}]) {
    const o = statePayload({ ...base, account } as never);
    assert.not.ok("account" in o, JSON.stringify(account));
  }
  assert.equal(
    statePayload({ ...base, account: { fingerprint: FP, previous: 9 } } as never).account,
    { fingerprint: FP },
  );
});

// ── integer times ────────────────────────────────────────────────────────────────────────────

test("wallMs() and wholeSeconds(): floors of finite numbers, null for what cannot be an integer", () => {
  assert.is(wallMs(1764000000123.4567), 1764000000123);
  assert.is(wallMs(1764000000123), 1764000000123);
  assert.is(wallMs(0.9), 0);
  assert.is(Object.is(wallMs(-0), 0), true, "never -0");
  assert.is(wallMs(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  for (const v of [NaN, Infinity, -Infinity, -1, 2 ** 53, 1e300, "1764000000123", null, 5n]) {
    assert.is(wallMs(v), null, String(v));
  }
  assert.is(wholeSeconds(599.999), 599);
  assert.is(wholeSeconds(-3.5), 0, "past is 0 seconds left");
  assert.is(Object.is(wholeSeconds(-0.2), 0), true);
  for (const v of [NaN, Infinity, -Infinity, 1e300, "60", undefined]) {
    assert.is(wholeSeconds(v), null, String(v));
  }
});

const AT = 1764000000123.4567;

test("statePayload(), pairingPayload(), tokenPayload(), replyPayload() send integer times", () => {
  const s = statePayload({ state: "linked", since: AT, scopes: [] });
  assert.is(s.since, 1764000000123);
  const p = pairingPayload({
    user_code: "ABCDEF",
    verification_uri: "u",
    expires_at: AT,
    expires_in: 599.7,
    interval: 5,
  });
  assert.equal([p.expires_at, p.expires_in], [1764000000123, 599]);
  const t = { access_token: "Atza|t", token_type: "bearer", scopes: [], expires_at: AT };
  assert.equal(
    [
      tokenPayload({ ...t, expires_in: 3599.9 }).expires_at,
      tokenPayload({ ...t, expires_in: 1.5 }).expires_in,
    ],
    [1764000000123, 1],
  );
  const r = replyPayload({ ...t, expires_in: 3599.9 });
  assert.equal([r.expires_at, r.expires_in], [1764000000123, 3599]);
});

test("a time that is not a finite number is left out, never sent as a float", () => {
  for (const bad of [NaN, Infinity, -5, 2 ** 53]) {
    const s = statePayload({ state: "offline", since: bad, scopes: [] });
    assert.equal(s, { state: "offline", scopes: [] }, String(bad));
    const t = tokenPayload({
      access_token: "a",
      token_type: "bearer",
      scopes: [],
      expires_at: bad,
      expires_in: bad === -5 ? 60 : bad,
    });
    assert.not.ok("expires_at" in t, String(bad));
    const p = pairingPayload({
      user_code: "C",
      verification_uri: "u",
      expires_at: bad,
      expires_in: 600,
      interval: 5,
    });
    assert.not.ok("expires_at" in p, String(bad));
    assert.is(p.expires_in, 600);
  }
});

test("encodeCbor() writes whole numbers beyond 32 bits as integers (major type 0), not float64", () => {
  // cbor-x alone writes 2^32 and every Unix-millisecond time as a float64 (fb...): src/cbor.ts
  // hands it safe integers above 32 bits as BigInt. Beyond 2^53 - 1 a number is a float.
  assert.is(hex(encodeCbor(0xffffffff)), "1affffffff");
  assert.is(hex(encodeCbor(2 ** 32)), "1b0000000100000000");
  assert.is(hex(encodeCbor(1764000000123)), "1b0000019ab697e87b");
  assert.is(hex(encodeCbor(Number.MAX_SAFE_INTEGER)), "1b001fffffffffffff");
  assert.is(hex(encodeCbor(AT)).slice(0, 2), "fb", "a fraction is a float: floor it first");
  assert.is(hex(encodeCbor(2 ** 53)).slice(0, 2), "fb", "why wallMs() refuses 2^53");
  assert.is(hex(encodeCbor({ since: wallMs(AT) })), "a16573696e63651b0000019ab697e87b");
});

/**
 * Python: decodes each payload with cbor2 and walks its bytes by hand, so that a value is
 * reported with its CBOR major type (0 unsigned, 1 negative, 6 tag, 7 float/simple), not only
 * with the Python type cbor2 gives it (a tag-2 bignum would also be a Python int).
 */
const CBOR2_TYPES_PY = `
import sys, json, cbor2

def head(b, i):
    ib = b[i]; major, info = ib >> 5, ib & 31; i += 1
    if info < 24: return major, info, i
    n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return major, int.from_bytes(b[i:i + n], "big"), i + n

def walk(b, i):
    major, arg, i = head(b, i)
    if major in (0, 1): return major, i
    if major in (2, 3): return major, i + arg
    if major == 4:
        out = []
        for _ in range(arg):
            v, i = walk(b, i); out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(arg):
            km, klen, i = head(b, i)
            key = b[i:i + klen].decode() if km == 3 else "!" + str(km)
            i += klen if km == 3 else 0
            out[key], i = walk(b, i)
        return out, i
    if major == 6: return 6, walk(b, i)[1]
    return 7, i  # floats and simple values: head() skipped their bytes

def types(v):
    if isinstance(v, dict): return {k: types(x) for k, x in v.items()}
    if isinstance(v, list): return [types(x) for x in v]
    return type(v).__name__

out = {}
for name, h in json.load(sys.stdin).items():
    b = bytes.fromhex(h)
    v = cbor2.loads(b)
    majors, end = walk(b, 0)
    assert end == len(b), (name, end, len(b))
    out[name] = {"value": v, "types": types(v), "majors": majors}
print(json.dumps(out))
`;

withCbor2(
  "cbor2 decodes every *_at, since and expires_in as an integer of major type 0, and account as text",
  async () => {
    const t = { access_token: "Atza|t", token_type: "bearer", scopes: ["alexa:all"] };
    const payloads: Record<string, Record<string, unknown>> = {
      state: statePayload({
        state: "linked",
        since: AT,
        scopes: ["alexa:all", "profile:user_id"],
        account: { fingerprint: FP, previous: FP2 },
      }),
      error: statePayload({
        state: "error",
        since: 2 ** 32 + 0.5,
        scopes: [],
        error: { code: "network", message: "m" },
      }),
      pairing: pairingPayload({
        user_code: "ABCDEF",
        verification_uri: "https://amazon.com/us/code",
        verification_uri_complete: "https://amazon.com/us/code?cbl-code=ABCDEF",
        expires_at: AT,
        expires_in: 599.5,
        interval: 5,
      }),
      token: tokenPayload({ ...t, expires_at: AT, expires_in: 3599.25 }),
      reply: replyPayload({ ...t, expires_at: 2 ** 40 + 0.25, expires_in: 1e6 }),
      segment: segmentPayload({ digits: 2, kind: 14, frames: [[0x3f37, 0]], frame_ms: 500 }),
    };
    const input = Object.fromEntries(
      Object.entries(payloads).map(([k, v]) => [k, hex(encodeCbor(v))]),
    );
    const out = await python(CBOR2_TYPES_PY, input) as Record<
      string,
      {
        value: Record<string, unknown>;
        types: Record<string, unknown>;
        majors: Record<string, unknown>;
      }
    >;
    const times: Record<string, string[]> = {
      state: ["since"],
      error: ["since"],
      pairing: ["expires_at", "expires_in", "interval"],
      token: ["expires_at", "expires_in"],
      reply: ["expires_at", "expires_in"],
    };
    for (const [name, keys] of Object.entries(times)) {
      const o = out[name]!;
      for (const k of keys) {
        assert.is(o.types[k], "int", `${name}.${k} is a Python int`);
        assert.is(o.majors[k], 0, `${name}.${k} is CBOR major type 0`);
        assert.is(o.value[k], payloads[name]![k], `${name}.${k} value`);
      }
    }
    assert.is(out.state!.value.since, 1764000000123);
    assert.is(out.error!.value.since, 2 ** 32);
    assert.equal([out.pairing!.value.expires_at, out.pairing!.value.expires_in], [
      1764000000123,
      599,
    ]);
    assert.equal([out.token!.value.expires_at, out.token!.value.expires_in], [1764000000123, 3599]);
    assert.equal([out.reply!.value.expires_at, out.reply!.value.expires_in], [2 ** 40, 1e6]);
    assert.equal(out.state!.value.account, { fingerprint: FP, previous: FP2 });
    assert.equal(out.state!.types.account, { fingerprint: "str", previous: "str" });
    assert.equal(out.state!.majors.account, { fingerprint: 3, previous: 3 });
    assert.equal(out.error!.types.error, { code: "str", message: "str" });
    assert.equal(out.segment!.value, { digits: 2, kind: 14, frames: [[0x3f37, 0]], frame_ms: 500 });
    assert.equal(out.segment!.majors, { digits: 0, kind: 0, frames: [[0, 0]], frame_ms: 0 });
  },
);

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
