import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { fromHex, toHex, utf8 } from "../bytes.ts";
import { python, pythonHas, whenPython } from "../../test/support/python.ts";
import { DERIVED_KEY_BYTES, deriveKey, HMAC_SHA512_BYTES, hmacSha512 } from "./hmac.ts";

const hex = (s: string): Uint8Array => {
  const b = fromHex(s);
  if (b === null) throw new Error(`bad hex in test: ${s}`);
  return b;
};
const fill = (byte: number, n: number) => new Uint8Array(n).fill(byte);

// RFC 4231 section 4, HMAC-SHA-512 outputs (case 5 truncates the output and is not used).
const RFC4231: { name: string; key: Uint8Array; data: Uint8Array; mac: string }[] = [
  {
    name: "case 1",
    key: fill(0x0b, 20),
    data: utf8.encode("Hi There"),
    mac: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde" +
      "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
  },
  {
    name: "case 2",
    key: utf8.encode("Jefe"),
    data: utf8.encode("what do ya want for nothing?"),
    mac: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" +
      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
  },
  {
    name: "case 3",
    key: fill(0xaa, 20),
    data: fill(0xdd, 50),
    mac: "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39" +
      "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
  },
  {
    name: "case 4",
    key: hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
    data: fill(0xcd, 50),
    mac: "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db" +
      "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
  },
  {
    name: "case 6",
    key: fill(0xaa, 131),
    data: utf8.encode("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352" +
      "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
  },
  {
    name: "case 7",
    key: fill(0xaa, 131),
    data: utf8.encode(
      "This is a test using a larger than block-size key and a larger than block-size data. " +
        "The key needs to be hashed before being used by the HMAC algorithm.",
    ),
    mac: "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944" +
      "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
  },
];

for (const c of RFC4231) {
  test(`hmacSha512() matches RFC 4231 ${c.name}`, () => {
    const keyBefore = toHex(c.key);
    const dataBefore = toHex(c.data);
    const mac = hmacSha512(c.key, c.data);
    assert.is(mac.length, HMAC_SHA512_BYTES);
    assert.is(toHex(mac), c.mac);
    assert.is(toHex(c.key), keyBefore, "key left unchanged");
    assert.is(toHex(c.data), dataBefore, "data left unchanged");
  });
}

test("hmacSha512() of an empty key and empty data is HMAC-SHA-512 of nothing", () => {
  // Python: hmac.new(b"", b"", hashlib.sha512).hexdigest()
  assert.is(
    toHex(hmacSha512(new Uint8Array(0), new Uint8Array(0))),
    "b936cee86c9f87aa5d3c6f2e84cb5a4239a5fe50480a6ec66b70ab5b1f4ac673" +
      "0c6c515421b327ec1d69402e53dfb49ad7381eb067b338fd7b0cb22247225d47",
  );
});

test("deriveKey() is the first 32 bytes of HMAC-SHA-512(root, label || 0x00 || context)", () => {
  const root = fill(0x42, 32);
  const ctx = hex("00ff10");
  const full = hmacSha512(root, hex(toHex(utf8.encode("linkd/v1/x")) + "00" + "00ff10"));
  const k = deriveKey(root, "linkd/v1/x", ctx);
  assert.is(k.length, DERIVED_KEY_BYTES);
  assert.is(toHex(k), toHex(full.subarray(0, 32)));
  // No context is an empty context, and label, context and root each change the key.
  assert.is(toHex(deriveKey(root, "a")), toHex(deriveKey(root, "a", new Uint8Array(0))));
  assert.is.not(toHex(deriveKey(root, "a")), toHex(deriveKey(root, "b")));
  assert.is.not(toHex(deriveKey(root, "a", hex("00"))), toHex(deriveKey(root, "a")));
  assert.is.not(toHex(deriveKey(fill(0x43, 32), "a")), toHex(deriveKey(root, "a")));
  // "ab" || 0 || "" differs from "a" || 0 || "b": the separator keeps them apart.
  assert.is.not(toHex(deriveKey(root, "ab")), toHex(deriveKey(root, "a", utf8.encode("b"))));
});

test("deriveKey() refuses an empty label and a label holding U+0000", () => {
  assert.throws(() => deriveKey(fill(1, 32), ""), (e: unknown) => e instanceof TypeError);
  assert.throws(() => deriveKey(fill(1, 32), "a\0b"), (e: unknown) => e instanceof TypeError);
});

// ---- cross-check against Python's hmac and hashlib ----

const PY_HMAC = `
import hashlib, hmac, json, sys
cases = json.load(sys.stdin)
out = []
for c in cases:
    key = bytes.fromhex(c["key"]); data = bytes.fromhex(c["data"])
    mac = hmac.new(key, data, hashlib.sha512).hexdigest()
    kdf = hmac.new(key, c["label"].encode() + b"\\0" + data, hashlib.sha512).digest()[:32].hex()
    out.append({"mac": mac, "kdf": kdf})
json.dump(out, sys.stdout)
`;

const pyTest = whenPython(
  test,
  await pythonHas("hmac, hashlib, json"),
  "the Python hmac cross-check",
);

pyTest("hmacSha512() and deriveKey() match Python's hmac for random lengths", async () => {
  // Key lengths around the 128-byte block edge and beyond, data from empty to several blocks.
  const keyLens = [0, 1, 31, 32, 64, 127, 128, 129, 200, 255, 256, 300];
  const cases: { key: string; data: string; label: string }[] = [];
  for (let i = 0; i < 240; i++) {
    const kl = i < keyLens.length ? keyLens[i]! : Math.floor(Math.random() * 301);
    const dl = i % 3 === 0 ? Math.floor(Math.random() * 8) : Math.floor(Math.random() * 1025);
    cases.push({
      key: toHex(nacl.randomBytes(kl)),
      data: toHex(nacl.randomBytes(dl)),
      label: `linkd/test/${i}`,
    });
  }
  const got = await python(PY_HMAC, cases) as { mac: string; kdf: string }[];
  assert.is(got.length, cases.length);
  cases.forEach((c, i) => {
    const key = hex(c.key);
    const data = hex(c.data);
    const where = `key=${c.key} data=${c.data} label=${c.label}`;
    assert.is(toHex(hmacSha512(key, data)), got[i]!.mac, `hmac ${where}`);
    assert.is(toHex(deriveKey(key, c.label, data)), got[i]!.kdf, `deriveKey ${where}`);
  });
});

test.run();
