import { test } from "uvu";
import * as assert from "uvu/assert";
import { codeOf } from "../../test/support/assert.ts";
import nacl from "tweetnacl";
import { toHex, utf8 } from "../bytes.ts";
import { encodeCbor } from "../cbor.ts";
import { Code } from "../errors.ts";
import { NorEmulator } from "../flash/nor_emulator.ts";
import { unsignedIdentity } from "../records/identity.ts";
import { RecordType } from "../records/types.ts";
import { encodeTokenRecord, type TokenRecord } from "../records/token.ts";
import { RecordStore } from "./record_store.ts";
import { Vault } from "./vault.ts";

const random = (n: number) => nacl.randomBytes(n);

function device(serial = "SN-TEST-1", root = nacl.randomBytes(32)) {
  const flash = NorEmulator.memory();
  const store = RecordStore.mount(flash);
  const vault = new Vault(store, root, random);
  vault.writeIdentity(unsignedIdentity({
    serial,
    product_id: "speaker",
    client_id: "amzn1.application-oa2-client.test",
    device_public_key: new Uint8Array(32).fill(7),
    provisioned_at: 1_700_000_000_000,
  }));
  return { flash, store, vault, root };
}

function token(seed: number): TokenRecord {
  const rand = () => toHex(nacl.hash(utf8.encode(`t${seed}`))).repeat(15);
  return {
    access_token: `Atza|${rand()}`,
    refresh_token: `Atzr|${rand().split("").reverse().join("")}`,
    token_type: "bearer",
    scopes: ["alexa:all"],
    expires_in: 3600,
    obtained_at: 1_700_000_000_000,
    expires_at: 1_700_003_600_000,
    client_id: "amzn1.application-oa2-client.test",
  };
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

test("Vault.put() and get() round trip sealed records across a remount", () => {
  const d = device();
  const t = encodeTokenRecord(token(1));
  d.vault.put(RecordType.TOKENS, t);
  const again = new Vault(
    RecordStore.mount(NorEmulator.fromImage(d.flash.image(), d.flash.geometry)),
    d.root,
    random,
  );
  assert.equal(again.get(RecordType.TOKENS), t);
  assert.is(again.identity()!.identity.serial, "SN-TEST-1");
});

test("Vault: a copy of the flash image reveals no token, in any common encoding", () => {
  const d = device();
  const t = token(2);
  for (let i = 0; i < 20; i++) d.vault.put(RecordType.TOKENS, encodeTokenRecord(token(100 + i)));
  d.vault.put(RecordType.TOKENS, encodeTokenRecord(t));
  const image = d.flash.image();
  for (const secret of [t.access_token, t.refresh_token, token(105).refresh_token]) {
    const b = utf8.encode(secret);
    for (let i = 0; i + 16 <= b.length; i += 16) {
      assert.not.ok(
        contains(image, b.subarray(i, i + 16)),
        "a 16-byte window of a token is on flash",
      );
    }
    assert.not.ok(contains(image, utf8.encode(btoa(secret).slice(8, 40))));
  }
  assert.not.ok(contains(image, d.root), "the root key is not on flash");
});

test("Vault: a record moved to another slot fails to open", () => {
  const d = device();
  d.vault.put(RecordType.TOKENS, encodeTokenRecord(token(3)));
  const sealed = d.store.get(RecordType.TOKENS)!.data;
  d.store.put(RecordType.SCOPES, sealed); // same bytes, other slot, new sequence number
  const code = codeOf(() => d.vault.get(RecordType.SCOPES));
  assert.ok(code === Code.SEAL_BINDING || code === Code.SEAL_AUTH, code);
});

test("Vault: an old record replayed as a newer entry fails to open", () => {
  const d = device();
  d.vault.put(RecordType.TOKENS, encodeTokenRecord(token(4)));
  const old = d.store.get(RecordType.TOKENS)!.data;
  d.vault.put(RecordType.TOKENS, encodeTokenRecord(token(5)));
  d.store.put(RecordType.TOKENS, old); // an attacker writes the old sealed bytes back
  assert.is(codeOf(() => d.vault.get(RecordType.TOKENS)), Code.SEAL_BINDING);
});

test("Vault: a flash image copied to another device opens nothing", () => {
  const a = device("SN-A");
  a.vault.put(RecordType.TOKENS, encodeTokenRecord(token(6)));
  // Same flash, another device's root key: the identity no longer authenticates.
  const other = new Vault(
    RecordStore.mount(NorEmulator.fromImage(a.flash.image(), a.flash.geometry)),
    nacl.randomBytes(32),
    random,
  );
  assert.is(codeOf(() => other.identity()), Code.IDENTITY_CORRUPT);
  assert.is(codeOf(() => other.get(RecordType.TOKENS, "SN-A")), Code.SEAL_AUTH);
  // A sealed record moved between two devices with the same root key but other serials.
  const b = device("SN-B", a.root);
  b.store.put(RecordType.TOKENS, a.store.get(RecordType.TOKENS)!.data);
  const code = codeOf(() => b.vault.get(RecordType.TOKENS));
  assert.ok(code === Code.SEAL_AUTH || code === Code.SEAL_BINDING, code);
});

test("Vault.identity() refuses an identity rewritten without the root key", () => {
  const d = device();
  const forged = unsignedIdentity({
    serial: "SN-FORGED",
    product_id: "speaker",
    client_id: "someone-else",
    device_public_key: new Uint8Array(32),
    provisioned_at: 1,
  });
  d.store.put(
    RecordType.IDENTITY,
    encodeCbor({ envelope: encodeCbor({ record: forged.record }), mac: new Uint8Array(32) }),
  );
  const v = new Vault(d.store, d.root, random);
  assert.is(codeOf(() => v.identity()), Code.IDENTITY_CORRUPT);
  d.store.put(RecordType.IDENTITY, utf8.encode("not cbor at all \xff"));
  assert.is(codeOf(() => new Vault(d.store, d.root, random).identity()), Code.STORE_CORRUPT);
});

test("Vault.put() without an identity is NOT_PROVISIONED", () => {
  const v = new Vault(RecordStore.mount(NorEmulator.memory()), nacl.randomBytes(32), random);
  assert.is(v.identity(), null);
  assert.is(codeOf(() => v.put(RecordType.TOKENS, new Uint8Array(4))), Code.NOT_PROVISIONED);
});

test.run();
