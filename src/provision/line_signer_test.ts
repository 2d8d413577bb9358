import { test } from "uvu";
import * as assert from "uvu/assert";
import { failsWith } from "../../test/support/assert.ts";
import nacl from "tweetnacl";
import { toHex } from "../bytes.ts";
import { Code } from "../errors.ts";
import { type LineSigner, openLineSigner, seedSigner, verifiedSigner } from "./line_signer.ts";
import { signIdentity, verifyLineSignature } from "./line_signature.ts";

const dir = Deno.makeTempDirSync({ prefix: "linkd-line-signer-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

const SEED = new Uint8Array(32).fill(9);
const MESSAGE = new TextEncoder().encode("record");
const ID = {
  serial: "SN-SIGNER",
  product_id: "speaker",
  client_id: "cid",
  device_public_key: new Uint8Array(32).fill(3),
  provisioned_at: 1,
};

test("seedSigner() signs as tweetnacl does with the seed, and signs no more once closed", () => {
  const pair = nacl.sign.keyPair.fromSeed(SEED);
  const s = seedSigner(SEED);
  assert.equal(s.publicKey, pair.publicKey);
  assert.equal(s.sign(MESSAGE), nacl.sign.detached(MESSAGE, pair.secretKey));
  s.close();
  assert.throws(() => s.sign(MESSAGE), /closed/);
  assert.equal(SEED, new Uint8Array(32).fill(9), "the caller's seed is the caller's");
});

test("openLineSigner() takes a key file's path: raw or hex seed, refused when others may read it", () => {
  const raw = `${dir}/raw.key`;
  Deno.writeFileSync(raw, SEED, { mode: 0o600 });
  const hex = `${dir}/hex.key`;
  Deno.writeTextFileSync(hex, `${toHex(SEED)}\n`, { mode: 0o600 });
  const want = nacl.sign.keyPair.fromSeed(SEED).publicKey;
  for (const path of [raw, hex]) {
    const s = openLineSigner(path);
    assert.equal(s.publicKey, want, path);
    assert.ok(nacl.sign.detached.verify(MESSAGE, s.sign(MESSAGE), want));
    s.close();
  }
  Deno.chmodSync(raw, 0o644);
  assert.match(failsWith(() => openLineSigner(raw), Code.BAD_LINE_KEY), /chmod 600/);
  failsWith(() => openLineSigner(`${dir}/absent.key`), Code.LINE_KEY_MISSING);
  // a path that merely contains "pkcs11:" is a file
  failsWith(() => openLineSigner(`${dir}/pkcs11:x`), Code.LINE_KEY_MISSING);
});

/** A signer like an HSM's whose signatures go wrong after `good` of them. */
function flaky(good: number, wrong: (sig: Uint8Array) => Uint8Array) {
  const inner = seedSigner(SEED);
  let n = 0;
  const state = { closed: false };
  const signer: LineSigner = {
    publicKey: inner.publicKey,
    sign: (m) => (n++ < good ? inner.sign(m) : wrong(inner.sign(m))),
    close: () => (state.closed = true, inner.close()),
  };
  return { signer, state };
}

const flip = (sig: Uint8Array) => (sig[10]! ^= 1, sig);

test("verifiedSigner() refuses an HSM whose signatures do not verify when it opens, and closes it", () => {
  for (const wrong of [flip, (s: Uint8Array) => s.slice(0, 63), () => new Uint8Array(64)]) {
    const { signer, state } = flaky(0, wrong);
    const msg = failsWith(() => verifiedSigner(signer, "pkcs11:object=k"), Code.BAD_LINE_KEY);
    assert.match(msg, /^Cannot open the line key pkcs11:object=k: the HSM returned a signature/);
    assert.ok(state.closed);
  }
});

test("signIdentity() with an HSM that returns a bad signature throws BAD_LINE_KEY, returns nothing", () => {
  const { signer } = flaky(2, flip);
  const line = verifiedSigner(signer, "pkcs11:object=k");
  const good = signIdentity(ID, line);
  assert.ok(verifyLineSignature(good));
  let out: unknown = "none";
  const msg = failsWith(() => (out = signIdentity(ID, line)), Code.BAD_LINE_KEY);
  assert.match(msg, /^Cannot sign with the line key pkcs11:object=k: .* does not verify/);
  assert.is(out, "none");
});

test("signIdentity() with a seed signer makes a record verifyLineSignature() accepts", () => {
  const s = seedSigner(SEED);
  const signed = signIdentity(ID, s);
  assert.equal(signed.line_public_key, s.publicKey);
  assert.ok(verifyLineSignature(signed));
});

test.run();
