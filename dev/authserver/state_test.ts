import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { CLIENT, SCOPE_DATA } from "../../test/support/authserver.ts";
import { AuthState, normaliseUserCode, RFC_USER_CODE_ALPHABET } from "./state.ts";

/** A seeded byte source (xorshift32), so codes and tokens repeat from run to run. */
function seeded(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

function lwaForm(fields: Record<string, string> = {}): URLSearchParams {
  return new URLSearchParams({
    response_type: "device_code",
    client_id: CLIENT,
    scope: "alexa:all",
    scope_data: SCOPE_DATA,
    ...fields,
  });
}

test("normaliseUserCode() drops case, dashes and spaces (RFC 8628 section 6.1)", () => {
  assert.is(normaliseUserCode("bcdf-ghjk"), "BCDFGHJK");
  assert.is(normaliseUserCode(" Bc Df-gH-jk "), "BCDFGHJK");
  assert.is(normaliseUserCode("abcdef"), "ABCDEF");
});

test("AuthState codes come from the injected random source and have the dialect's shape", () => {
  const make = () =>
    new AuthState({ clock: new FakeClock(), random: seeded(7), clients: [{ clientId: CLIENT }] });
  const a = make().codepair("lwa", lwaForm());
  const b = make().codepair("lwa", lwaForm());
  assert.equal(a, b); // same seed, same answer
  assert.match(a.body["user_code"] as string, /^[A-Z]{6}$/);

  const s = make();
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const r = s.codepair("rfc8628", new URLSearchParams({ client_id: CLIENT }));
    const code = r.body["user_code"] as string;
    assert.match(code, /^[A-Z]{4}-[A-Z]{4}$/);
    for (const c of code.replace("-", "")) assert.ok(RFC_USER_CODE_ALPHABET.includes(c), c);
    seen.add(code);
  }
  assert.is(seen.size, 200);
});

test("AuthState refuses a random source that never yields a usable byte", () => {
  const s = new AuthState({
    clock: new FakeClock(),
    random: (n) => new Uint8Array(n).fill(255), // 255 is past the last multiple of 20 and 26
    clients: [{ clientId: CLIENT }],
  });
  assert.throws(() => s.codepair("lwa", lwaForm()), /random source is stuck/);
});

test("AuthState refuses a random source that repeats itself into a live code", () => {
  const s = new AuthState({
    clock: new FakeClock(),
    random: (n) => new Uint8Array(n).fill(3),
    clients: [{ clientId: CLIENT }],
  });
  assert.is(s.codepair("lwa", lwaForm()).status, 200);
  assert.throws(() => s.codepair("lwa", lwaForm()), /collides/);
});

test("AuthState lookup() and decide(): the page's view of a code and its nonce", async () => {
  const clock = new FakeClock();
  const s = new AuthState({
    clock,
    clients: [{ clientId: CLIENT, name: "Kitchen speaker" }],
    verificationUri: "http://127.0.0.1:1/code",
  });
  const r = s.codepair("lwa", lwaForm());
  const code = r.body["user_code"] as string;
  const found = s.lookup(code.toLowerCase());
  assert.ok(found.ok);
  if (!found.ok) return;
  assert.is(found.clientName, "Kitchen speaker");
  assert.equal(found.device, { productId: "linkd_speaker", serial: "SN-0001" });
  assert.equal(found.scopes, ["alexa:all"]);
  assert.equal(s.decide(code, "wrong nonce", true), { ok: false, reason: "unknown" });
  assert.is(s.pending().length, 1);
  assert.ok(s.decide(code, found.nonce, true).ok);
  assert.equal(s.lookup(code), { ok: false, reason: "used" });
  assert.equal(s.lookup("QQQQQQ"), { ok: false, reason: "unknown" });

  const late = s.codepair("lwa", lwaForm()).body["user_code"] as string;
  await clock.advance(600_000);
  assert.equal(s.lookup(late), { ok: false, reason: "expired" });
});

test("AuthState forgets codes an hour after they expire: a late LWA poll is invalid_code_pair", async () => {
  const clock = new FakeClock();
  const s = new AuthState({ clock, clients: [{ clientId: CLIENT }] });
  const old = s.codepair("lwa", lwaForm()).body;
  await clock.advance(600_000 + 3_600_000);
  s.codepair("lwa", lwaForm()); // prunes
  const poll = s.token(
    "lwa",
    new URLSearchParams({
      grant_type: "device_code",
      device_code: old["device_code"] as string,
      user_code: old["user_code"] as string,
    }),
  );
  assert.is(poll.body["error"], "invalid_code_pair");
});

test("AuthState addClient() validates and fills defaults; enableScope() needs a known client", () => {
  const s = new AuthState();
  const c = s.addClient({ clientId: "c" });
  assert.is(c.interval, 5);
  assert.is(c.type, "device");
  assert.throws(() => s.addClient({ clientId: "" }), /clientId/);
  assert.throws(() => s.addClient({ clientId: "c", accessTokenLength: 8 }), /accessTokenLength/);
  assert.throws(() => s.addClient({ clientId: "c", enabledScopes: ["a b"] }), /enabledScopes/);
  assert.throws(() => s.addClient({ clientId: "c", refreshGrace: -1 }), /refreshGrace/);
  assert.throws(() => s.enableScope("nobody", "profile"), /nobody/);
});

test.run();
