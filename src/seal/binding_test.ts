/** The identity binding and the device seed: what the OTP root key fixes for life. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { toHex } from "../bytes.ts";
import { bindingMatches, deviceSeed, IDENTITY_BINDING_BYTES, identityBinding } from "./binding.ts";
import { deriveKey, hmacSha512 } from "./hmac.ts";

const root = new Uint8Array(32).map((_, i) => i + 1);
const id = { serial: "SN1", productId: "PID", clientId: "CID" };

test("identityBinding() is a MAC of the three fields, length-prefixed, under a derived key", () => {
  const b = identityBinding(root, id);
  assert.is(b.length, IDENTITY_BINDING_BYTES);
  const msg = new Uint8Array([0, 3, 83, 78, 49, 0, 3, 80, 73, 68, 0, 3, 67, 73, 68]);
  const want = hmacSha512(deriveKey(root, "linkd/v1/identity-binding"), msg).slice(0, 32);
  assert.is(toHex(b), toHex(want));
  assert.ok(bindingMatches(root, b, id));
});

test("identityBinding(): any other field, another split of the same text, or another root differs", () => {
  const b = identityBinding(root, id);
  const others = [
    { ...id, serial: "SN2" },
    { ...id, productId: "PID2" },
    { ...id, clientId: "CID2" },
    { serial: "SN1P", productId: "ID", clientId: "CID" }, // the same bytes, split elsewhere
  ];
  for (const o of others) assert.not.ok(bindingMatches(root, b, o), JSON.stringify(o));
  const otherRoot = root.map((x) => x ^ 0x80);
  assert.not.ok(bindingMatches(otherRoot, b, id));
});

test("deviceSeed() is fixed by the root key and independent of the binding", () => {
  assert.is(toHex(deviceSeed(root)), toHex(deviceSeed(root.slice())));
  assert.is(toHex(deviceSeed(root)), toHex(deriveKey(root, "linkd/v1/device-key/ed25519")));
  assert.is.not(toHex(deviceSeed(root)), toHex(identityBinding(root, id)));
  assert.is.not(toHex(deviceSeed(root)), toHex(deviceSeed(root.map((x) => x ^ 1))));
});

test.run();
