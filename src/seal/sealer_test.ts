import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { concat, fromHex, toHex, utf8 } from "../bytes.ts";
import { throwsCode } from "../../test/support/assert.ts";
import { isLinkdError } from "../errors.ts";
import { python, pythonHas, whenPython } from "../../test/support/python.ts";
import { deriveKey } from "./hmac.ts";
import {
  encodeHeader,
  HEADER_FIXED_BYTES,
  MAC_BYTES,
  MAX_PLAINTEXT,
  NONCE_BYTES,
  RECORD_LABEL,
  SEAL_ROOT_LABEL,
  Sealer,
  type SealHeader,
  sealOverhead,
} from "./sealer.ts";

const hex = (s: string): Uint8Array => {
  const b = fromHex(s);
  if (b === null) throw new Error(`bad hex in test: ${s}`);
  return b;
};
const pattern = (n: number, mul: number, add = 0) =>
  Uint8Array.from({ length: n }, (_, i) => (i * mul + add) % 256);

const ROOT = pattern(32, 1);
const OTHER_ROOT = pattern(32, 1, 1);
const SERIAL = "SN-0000000000042"; // 16 characters
const fixedNonce = (nonce: Uint8Array) => (n: number) => {
  if (n !== NONCE_BYTES) throw new Error(`unexpected random(${n})`);
  return nonce.slice();
};

test("constants have their documented values", () => {
  assert.is(NONCE_BYTES, 24);
  assert.is(MAC_BYTES, 16);
  assert.is(HEADER_FIXED_BYTES, 16);
  assert.is(MAX_PLAINTEXT, 16384);
  assert.is(sealOverhead(1), 16 + 1 + 24 + 16);
  assert.is(sealOverhead(16), 72);
  assert.is(sealOverhead(64), 120);
  assert.throws(() => sealOverhead(0), (e: unknown) => e instanceof TypeError);
  assert.throws(() => sealOverhead(65), (e: unknown) => e instanceof TypeError);
});

test("encodeHeader() lays out magic, format, type, version, lengths, seq and serial", () => {
  const h = encodeHeader({ type: 7, version: 2, seq: 0x1_0203_0405, serial: "ab" });
  assert.is(toHex(h), "4c4b5301" + "07" + "02" + "02" + "00" + "0000000102030405" + "6162");
  const max = encodeHeader({ type: 255, version: 255, seq: Number.MAX_SAFE_INTEGER, serial: "Z" });
  assert.is(toHex(max.subarray(8, 16)), "001fffffffffffff");
});

test("Sealer.seal() then open() gives back the plaintext and header", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const pt = utf8.encode('{"refresh_token":"Atzr|x"}');
  const header: SealHeader = { type: 3, version: 1, seq: 41, serial: SERIAL };
  const sealed = s.seal(header, pt);
  assert.is(sealed.length, sealOverhead(SERIAL.length) + pt.length);
  const { header: h, plaintext } = s.open(sealed, { type: 3, seq: 41, serial: SERIAL });
  assert.equal({ ...h }, header);
  assert.is(toHex(plaintext), toHex(pt));
  assert.equal({ ...s.parseHeader(sealed) }, header);
  // The plaintext does not appear in the clear.
  assert.not.ok(toHex(sealed).includes(toHex(pt.subarray(0, 12))));
  // A second seal uses a fresh nonce: the records differ but both open.
  const again = s.seal(header, pt);
  assert.is.not(toHex(again), toHex(sealed));
  assert.is(toHex(s.open(again, { type: 3, seq: 41, serial: SERIAL }).plaintext), toHex(pt));
  // Another Sealer over the same root key opens it too (nothing hidden in instance state).
  const t = new Sealer(ROOT.slice(), nacl.randomBytes);
  assert.is(toHex(t.open(sealed, { type: 3, seq: 41, serial: SERIAL }).plaintext), toHex(pt));
});

test("Sealer round trip of empty and MAX_PLAINTEXT-byte plaintexts", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  for (const n of [0, 1, MAX_PLAINTEXT]) {
    const pt = nacl.randomBytes(n);
    const sealed = s.seal({ type: 0, version: 0, seq: n, serial: "X" }, pt);
    assert.is(sealed.length, sealOverhead(1) + n);
    assert.is(toHex(s.open(sealed, { type: 0, seq: n, serial: "X" }).plaintext), toHex(pt));
  }
});

test("Sealer.open() rejects every single-bit flip of a sealed record", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const pt = nacl.randomBytes(2048);
  const sealed = s.seal({ type: 5, version: 3, seq: 1234567, serial: SERIAL }, pt);
  const headerLength = HEADER_FIXED_BYTES + SERIAL.length;
  const expect = { type: 5, seq: 1234567, serial: SERIAL };
  assert.is(sealed.length, headerLength + NONCE_BYTES + MAC_BYTES + 2048);

  const counts: Record<string, number> = {};
  let tried = 0;
  let rejected = 0;
  for (let i = 0; i < sealed.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      tried++;
      const copy = sealed.slice();
      copy[i] = copy[i]! ^ (1 << bit);
      let code: string;
      try {
        s.open(copy, expect);
        code = "OPENED";
      } catch (e) {
        code = isLinkdError(e) ? e.code : `other: ${e}`;
      }
      counts[code] = (counts[code] ?? 0) + 1;
      if (code === "SEAL_MALFORMED" || code === "SEAL_AUTH" || code === "SEAL_BINDING") rejected++;
      const where = `byte ${i} bit ${bit}`;
      // Fixed parts of the header are shape errors; type, version and everything after the
      // header can only fail authentication.
      if (i < 4 || i === 7) assert.is(code, "SEAL_MALFORMED", where);
      else if (i === 4 || i === 5 || i >= headerLength) assert.is(code, "SEAL_AUTH", where);
    }
  }
  assert.is(tried, 8 * sealed.length);
  assert.is(rejected, 8 * sealed.length, JSON.stringify(counts));
  assert.is(counts["OPENED"], undefined);
  assert.is(counts["SEAL_BINDING"], undefined, "a flip never yields an authentic record");
  assert.is(counts["SEAL_AUTH"]! >= 8 * (sealed.length - headerLength), true);
  // The original still opens after all that.
  assert.is(toHex(s.open(sealed, expect).plaintext), toHex(pt));
});

/** Replaces the header of `sealed` (keeping nonce and box): what an attacker can do freely. */
function reheader(sealed: Uint8Array, oldSerialLength: number, h: SealHeader): Uint8Array {
  return concat(encodeHeader(h), sealed.subarray(HEADER_FIXED_BYTES + oldSerialLength));
}

test("Sealer.open() refuses a record moved to another slot", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const sealed = s.seal({ type: 3, version: 1, seq: 41, serial: SERIAL }, utf8.encode("token"));
  // Moved as is: authentic, but for another slot.
  throwsCode(
    () => s.open(sealed, { type: 4, seq: 41, serial: SERIAL }),
    "SEAL_BINDING",
    '"type" is 3, expected 4',
  );
  // Moved with its header rewritten to claim the new slot: authentication fails.
  const forged = reheader(sealed, SERIAL.length, { type: 4, version: 1, seq: 41, serial: SERIAL });
  throwsCode(
    () => s.open(forged, { type: 4, seq: 41, serial: SERIAL }),
    "SEAL_AUTH",
    "Cannot open sealed record: authentication failed for sequence 41",
  );
  // A changed version alone also breaks authentication.
  const v2 = reheader(sealed, SERIAL.length, { type: 3, version: 2, seq: 41, serial: SERIAL });
  throwsCode(() => s.open(v2, { type: 3, seq: 41, serial: SERIAL }), "SEAL_AUTH");
});

test("Sealer.open() refuses a record replayed with another sequence number", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const sealed = s.seal({ type: 3, version: 1, seq: 40, serial: SERIAL }, utf8.encode("old"));
  throwsCode(
    () => s.open(sealed, { type: 3, seq: 41, serial: SERIAL }),
    "SEAL_BINDING",
    '"seq" is 40, expected 41',
  );
  const forged = reheader(sealed, SERIAL.length, { type: 3, version: 1, seq: 41, serial: SERIAL });
  throwsCode(
    () => s.open(forged, { type: 3, seq: 41, serial: SERIAL }),
    "SEAL_AUTH",
    "authentication failed for sequence 41",
  );
});

test("Sealer.open() refuses a record copied to another device", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const sealed = s.seal({ type: 3, version: 1, seq: 7, serial: SERIAL }, utf8.encode("secret"));
  // Another device has another OTP root key.
  const other = new Sealer(OTHER_ROOT, nacl.randomBytes);
  throwsCode(() => other.open(sealed, { type: 3, seq: 7, serial: SERIAL }), "SEAL_AUTH");
  // Same key (cloned OTP) but another serial: the header says whose record it is.
  throwsCode(
    () => s.open(sealed, { type: 3, seq: 7, serial: "SN-0000000000043" }),
    "SEAL_BINDING",
    '"serial" is SN-0000000000042, expected SN-0000000000043',
  );
  // Header rewritten to the other serial, same length or not: authentication fails.
  for (const serial of ["SN-0000000000043", "OTHER"]) {
    const forged = reheader(sealed, SERIAL.length, { type: 3, version: 1, seq: 7, serial });
    throwsCode(() => s.open(forged, { type: 3, seq: 7, serial }), "SEAL_AUTH");
  }
});

test("Sealer.open() rejects every truncation and an appended byte", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const sealed = s.seal({ type: 1, version: 1, seq: 9, serial: SERIAL }, nacl.randomBytes(100));
  const expect = { type: 1, seq: 9, serial: SERIAL };
  const minimum = sealOverhead(SERIAL.length);
  for (let n = 0; n < sealed.length; n++) {
    const code = n < minimum ? "SEAL_MALFORMED" : "SEAL_AUTH";
    throwsCode(() => s.open(sealed.subarray(0, n), expect), code);
  }
  throwsCode(() => s.open(new Uint8Array(0), expect), "SEAL_MALFORMED", '"length" is 0 bytes');
  throwsCode(() => s.open(concat(sealed, new Uint8Array([0])), expect), "SEAL_AUTH");
});

test("Sealer refuses oversized plaintexts and records", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  throwsCode(
    () => s.seal({ type: 1, version: 1, seq: 1, serial: "X" }, new Uint8Array(MAX_PLAINTEXT + 1)),
    "SEAL_MALFORMED",
    "plaintext is 16385 bytes",
  );
  // A record longer than the largest plaintext needs is refused before authentication.
  const big = concat(
    encodeHeader({ type: 1, version: 1, seq: 1, serial: "X" }),
    new Uint8Array(NONCE_BYTES + MAC_BYTES + MAX_PLAINTEXT + 1),
  );
  throwsCode(() => s.open(big, { type: 1, seq: 1, serial: "X" }), "SEAL_MALFORMED", '"length"');
  throwsCode(() => s.parseHeader(big), "SEAL_MALFORMED", '"length"');
});

test("Sealer.open() names the malformed header field", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const good = s.seal({ type: 1, version: 1, seq: 2, serial: "AB" }, utf8.encode("x"));
  const expect = { type: 1, seq: 2, serial: "AB" };
  const patched = (at: number, value: number) => {
    const c = good.slice();
    c[at] = value;
    return c;
  };
  throwsCode(() => s.open(patched(0, 0x4d), expect), "SEAL_MALFORMED", '"magic"');
  throwsCode(() => s.open(patched(3, 2), expect), "SEAL_MALFORMED", '"format" is 2');
  throwsCode(() => s.open(patched(7, 1), expect), "SEAL_MALFORMED", '"reserved" is 1');
  throwsCode(() => s.open(patched(6, 0), expect), "SEAL_MALFORMED", '"serial length" is 0');
  throwsCode(() => s.open(patched(6, 65), expect), "SEAL_MALFORMED", '"serial length" is 65');
  throwsCode(() => s.open(patched(8, 0x01), expect), "SEAL_MALFORMED", '"seq"');
  throwsCode(() => s.open(patched(9, 0x20), expect), "SEAL_MALFORMED", '"seq"');
  throwsCode(() => s.open(patched(16, 0x2f), expect), "SEAL_MALFORMED", '"serial"');
  throwsCode(() => s.parseHeader(patched(3, 0)), "SEAL_MALFORMED", '"format" is 0');
  // parseHeader reads an intact header without authenticating anything.
  const wrongKey = new Sealer(OTHER_ROOT, nacl.randomBytes);
  assert.equal({ ...wrongKey.parseHeader(good) }, { type: 1, version: 1, seq: 2, serial: "AB" });
});

test("Sealer.seal() names the header field that is out of range", () => {
  const s = new Sealer(ROOT, nacl.randomBytes);
  const pt = new Uint8Array(1);
  const base: SealHeader = { type: 1, version: 1, seq: 1, serial: "A" };
  throwsCode(() => s.seal({ ...base, type: 256 }, pt), "SEAL_MALFORMED", '"type"');
  throwsCode(() => s.seal({ ...base, type: -1 }, pt), "SEAL_MALFORMED", '"type"');
  throwsCode(() => s.seal({ ...base, version: 1.5 }, pt), "SEAL_MALFORMED", '"version"');
  throwsCode(() => s.seal({ ...base, seq: 2 ** 53 }, pt), "SEAL_MALFORMED", '"seq"');
  throwsCode(() => s.seal({ ...base, seq: -1 }, pt), "SEAL_MALFORMED", '"seq"');
  throwsCode(() => s.seal({ ...base, serial: "" }, pt), "SEAL_MALFORMED", '"serial"');
  throwsCode(() => s.seal({ ...base, serial: "a b" }, pt), "SEAL_MALFORMED", '"serial"');
  throwsCode(() => s.seal({ ...base, serial: "é" }, pt), "SEAL_MALFORMED", '"serial"');
  throwsCode(() => s.seal({ ...base, serial: "x".repeat(65) }, pt), "SEAL_MALFORMED", '"serial"');
  const ok = s.seal({ ...base, serial: "x".repeat(64) }, pt);
  assert.is(ok.length, sealOverhead(64) + 1);
});

test("Sealer refuses caller mistakes with TypeError, and dispose() ends its use", () => {
  const isType = (e: unknown) => e instanceof TypeError;
  assert.throws(() => new Sealer(new Uint8Array(31), nacl.randomBytes), isType);
  const short = new Sealer(ROOT, () => new Uint8Array(23));
  assert.throws(
    () => short.seal({ type: 1, version: 1, seq: 1, serial: "A" }, new Uint8Array(1)),
    isType,
  );
  const s = new Sealer(ROOT, nacl.randomBytes);
  const sealed = s.seal({ type: 1, version: 1, seq: 1, serial: "A" }, new Uint8Array(1));
  assert.throws(() => s.open(sealed, { type: 1, seq: 1.5, serial: "A" }), isType);
  s.dispose();
  assert.throws(() => s.open(sealed, { type: 1, seq: 1, serial: "A" }), isType);
});

// ---- known-answer vectors ----

interface SealVector {
  name: string;
  rootKey: string;
  nonce: string;
  type: number;
  version: number;
  seq: number;
  serial: string;
  plaintext: string;
  recordKey: string;
  sealed: string;
}
interface SignVector {
  name: string;
  seed: string;
  message: string;
  publicKey: string;
  signature: string;
}
interface Vectors {
  generator: string[];
  seal: SealVector[];
  ed25519: SignVector[];
}
const VECTORS = JSON.parse(
  Deno.readTextFileSync(new URL("./testdata/vectors.json", import.meta.url)),
) as Vectors;

function checkSeal(v: SealVector): void {
  const header: SealHeader = { type: v.type, version: v.version, seq: v.seq, serial: v.serial };
  const root = hex(v.rootKey);
  const sealRoot = deriveKey(root, SEAL_ROOT_LABEL);
  assert.is(toHex(deriveKey(sealRoot, RECORD_LABEL, encodeHeader(header))), v.recordKey, v.name);
  const s = new Sealer(root, fixedNonce(hex(v.nonce)));
  const sealed = s.seal(header, hex(v.plaintext));
  assert.is(toHex(sealed), v.sealed, v.name);
  const opened = s.open(hex(v.sealed), { type: v.type, seq: v.seq, serial: v.serial });
  assert.is(toHex(opened.plaintext), v.plaintext, v.name);
  assert.equal({ ...opened.header }, header, v.name);
}

function checkSign(v: SignVector): void {
  const kp = nacl.sign.keyPair.fromSeed(hex(v.seed));
  assert.is(toHex(kp.publicKey), v.publicKey, v.name);
  const sig = nacl.sign.detached(hex(v.message), kp.secretKey);
  assert.is(toHex(sig), v.signature, v.name);
  assert.ok(nacl.sign.detached.verify(hex(v.message), sig, kp.publicKey), v.name);
}

test("Sealer matches the committed python3-nacl vectors", () => {
  assert.is(VECTORS.seal.length, 4);
  for (const v of VECTORS.seal) checkSeal(v);
});

test("tweetnacl Ed25519 matches the committed python3-nacl vectors", () => {
  assert.is(VECTORS.ed25519.length, 4);
  // The first one is RFC 8032 section 7.1 test 1.
  const rfc = VECTORS.ed25519[0]!;
  assert.is(rfc.publicKey, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  assert.is(
    rfc.signature,
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970" +
      "1cf9b46bd25bf5f0595bbe24655141438e7a100b",
  );
  for (const v of VECTORS.ed25519) checkSign(v);
});

// ---- the same, computed by python3-nacl at test time ----

/** The program that made testdata/vectors.json (kept there as "generator"). */
const PY_SEAL = `import hashlib, hmac, json, struct, sys
import nacl.secret, nacl.signing

def derive(root, label, ctx=b""):
    return hmac.new(root, label.encode() + b"\\0" + ctx, hashlib.sha512).digest()[:32]

def header(t, v, seq, serial):
    s = serial.encode("ascii")
    return b"LKS" + bytes([1, t, v, len(s), 0]) + struct.pack(">Q", seq) + s

req = json.load(sys.stdin)
seal = []
for c in req["seal"]:
    h = header(c["type"], c["version"], c["seq"], c["serial"])
    rk = derive(derive(bytes.fromhex(c["rootKey"]), "linkd/v1/seal"), "linkd/v1/record", h)
    box = nacl.secret.SecretBox(rk).encrypt(bytes.fromhex(c["plaintext"]), bytes.fromhex(c["nonce"]))
    seal.append({"recordKey": rk.hex(), "sealed": (h + bytes(box)).hex()})
sign = []
for c in req["ed25519"]:
    sk = nacl.signing.SigningKey(bytes.fromhex(c["seed"]))
    sign.append({"publicKey": bytes(sk.verify_key).hex(),
                 "signature": sk.sign(bytes.fromhex(c["message"])).signature.hex()})
json.dump({"seal": seal, "ed25519": sign}, sys.stdout)`;

type PyOut = {
  seal: { recordKey: string; sealed: string }[];
  ed25519: { publicKey: string; signature: string }[];
};

const pyTest = whenPython(
  test,
  await pythonHas("nacl.secret, nacl.signing, hmac, hashlib"),
  "python3-nacl checks",
);

test("testdata/vectors.json documents the program that made it", () => {
  assert.is(VECTORS.generator.join("\n"), PY_SEAL);
});

pyTest("python3-nacl reproduces the committed vectors from their inputs", async () => {
  const got = await python(PY_SEAL, { seal: VECTORS.seal, ed25519: VECTORS.ed25519 }) as PyOut;
  VECTORS.seal.forEach((v, i) => {
    assert.is(got.seal[i]!.recordKey, v.recordKey, v.name);
    assert.is(got.seal[i]!.sealed, v.sealed, v.name);
  });
  VECTORS.ed25519.forEach((v, i) => {
    assert.is(got.ed25519[i]!.publicKey, v.publicKey, v.name);
    assert.is(got.ed25519[i]!.signature, v.signature, v.name);
  });
});

pyTest("Sealer and tweetnacl Ed25519 match python3-nacl on fixed and random inputs", async () => {
  const serialChars = "ABCXYZabcxyz0189._-";
  const randomSerial = () => {
    const n = 1 + Math.floor(Math.random() * 64);
    let s = "";
    for (let i = 0; i < n; i++) s += serialChars[Math.floor(Math.random() * serialChars.length)];
    return s;
  };
  const seal: Omit<SealVector, "recordKey" | "sealed">[] = [{
    name: "fixed: 2 KiB pattern under the counting root key",
    rootKey: toHex(ROOT),
    nonce: toHex(pattern(24, 3, 1)),
    type: 9,
    version: 4,
    seq: 123456789012,
    serial: SERIAL,
    plaintext: toHex(pattern(2048, 5, 9)),
  }];
  const lengths = [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096, MAX_PLAINTEXT];
  for (let i = 0; i < 40; i++) {
    seal.push({
      name: `random ${i}`,
      rootKey: toHex(nacl.randomBytes(32)),
      nonce: toHex(nacl.randomBytes(24)),
      type: Math.floor(Math.random() * 256),
      version: Math.floor(Math.random() * 256),
      seq: i === 0 ? Number.MAX_SAFE_INTEGER : Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
      serial: randomSerial(),
      plaintext: toHex(
        nacl.randomBytes(lengths[i] ?? Math.floor(Math.random() * 3000)),
      ),
    });
  }
  const sign: Omit<SignVector, "publicKey" | "signature">[] = [];
  for (let i = 0; i < 12; i++) {
    sign.push({
      name: `random ${i}`,
      seed: toHex(nacl.randomBytes(32)),
      message: toHex(nacl.randomBytes(i * 37)),
    });
  }
  const got = await python(PY_SEAL, { seal, ed25519: sign }) as PyOut;
  seal.forEach((c, i) => {
    const v: SealVector = { ...c, ...got.seal[i]! };
    checkSeal({ ...v, name: `${c.name}: ${JSON.stringify({ ...c, plaintext: undefined })}` });
  });
  sign.forEach((c, i) => checkSign({ ...c, ...got.ed25519[i]!, name: JSON.stringify(c) }));
});

test.run();
