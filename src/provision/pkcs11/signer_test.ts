import { test } from "uvu";
import * as assert from "uvu/assert";
import { ecPoint } from "./signer.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

// PKCS #11 v3.0 says DER OCTET STRING; some modules return the 32 bytes bare.
test("ecPoint() takes CKA_EC_POINT wrapped in a DER OCTET STRING or bare, nothing else", () => {
  assert.equal(ecPoint(Uint8Array.of(0x04, 0x20, ...KEY)), KEY);
  assert.equal(ecPoint(KEY), KEY);
  assert.is(ecPoint(Uint8Array.of(0x04, 0x21, ...KEY, 0)), null);
  assert.is(ecPoint(Uint8Array.of(0x03, 0x20, ...KEY)), null);
  assert.is(ecPoint(KEY.subarray(1)), null);
  assert.is(ecPoint(Uint8Array.of(0x04, ...KEY)), null, "uncompressed Weierstrass-like prefix");
});

test.run();
