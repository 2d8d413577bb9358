import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { NorEmulator } from "../flash/nor_emulator.ts";
import {
  decodeEnvelope,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  encodeEnvelope,
} from "../records/identity.ts";
import { RecordStore } from "../store/record_store.ts";
import { Vault } from "../store/vault.ts";
import { ED25519_SEED_BYTES, signIdentity, verifyLineSignature } from "./line_signature.ts";
import { seedSigner } from "./line_signer.ts";

const random = (n: number) => nacl.randomBytes(n);

test("the identity record's Ed25519 sizes are tweetnacl's", () => {
  assert.is(ED25519_PUBLIC_KEY_BYTES, nacl.sign.publicKeyLength);
  assert.is(ED25519_SIGNATURE_BYTES, nacl.sign.signatureLength);
  assert.is(ED25519_SEED_BYTES, nacl.sign.seedLength);
  const signed = signIdentity({
    serial: "SN-SIZES",
    product_id: "speaker",
    client_id: "cid",
    device_public_key: nacl.sign.keyPair().publicKey,
    provisioned_at: 1,
  }, seedSigner(new Uint8Array(32).fill(5)));
  assert.equal(decodeEnvelope(encodeEnvelope(signed)), signed);
});

test("Vault.identity(): a line-signed identity reads back signed, and its signature verifies", () => {
  const root = nacl.randomBytes(32);
  const vault = new Vault(RecordStore.mount(NorEmulator.memory()), root, random);
  const id = {
    serial: "SN-SIGNED-1",
    product_id: "speaker",
    client_id: "cid",
    device_public_key: new Uint8Array(32).fill(3),
    provisioned_at: 1_700_000_000_000,
  };
  const signed = signIdentity(id, seedSigner(new Uint8Array(32).fill(9)));
  vault.writeIdentity(signed);
  const back = vault.identity()!;
  assert.equal(back.identity, id);
  assert.equal(back.signature, signed.signature);
  assert.equal(back.line_public_key, signed.line_public_key);
  assert.ok(verifyLineSignature(back));
  assert.not.ok(verifyLineSignature(signIdentity(id)), "unsigned");
});

test("Vault.identity() takes the device MAC as the authority; verifyLineSignature() is the line's check", () => {
  // A bad signature can only be there if whoever wrote it held this device's root key (the MAC
  // verifies), so the boot does not spend an Ed25519 verification on it; the line's check sees it.
  const root = nacl.randomBytes(32);
  const vault = new Vault(RecordStore.mount(NorEmulator.memory()), root, random);
  const signed = signIdentity({
    serial: "SN-SIGNED-2",
    product_id: "speaker",
    client_id: "cid",
    device_public_key: new Uint8Array(32).fill(3),
    provisioned_at: 1,
  }, seedSigner(new Uint8Array(32).fill(9)));
  const bad = signed.signature!.slice();
  bad[0]! ^= 1;
  vault.writeIdentity({ ...signed, signature: bad });
  const back = vault.identity()!;
  assert.is(back.identity.serial, "SN-SIGNED-2");
  assert.not.ok(verifyLineSignature(back));
});

test.run();
