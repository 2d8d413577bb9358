/**
 * cbor.ts: cbor-x is evaluated with Deno's global `Buffer` hidden, so it works on plain
 * Uint8Arrays and never loads Deno's Node compatibility layer; the global comes back after.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeCbor, encodeCbor } from "./cbor.ts";
// Evaluated once, by cbor.ts's imports above: this is the same module instance linkd uses.
import { Encoder } from "cbor-x/encode";

test("cbor-x took its Uint8Array path, not Node Buffers", () => {
  const out = new Encoder({ useRecords: false }).encode({ a: new Uint8Array([1, 2]) });
  assert.is(Object.getPrototypeOf(out), Uint8Array.prototype);
});

test("Deno's global Buffer is back after cbor-x was loaded", () => {
  const d = Object.getOwnPropertyDescriptor(globalThis, "Buffer");
  assert.ok(d?.get, "the lazy getter is restored");
  assert.is(typeof (globalThis as { Buffer?: unknown }).Buffer, "function");
});

test("encodeCbor() writes plain RFC 8949 bytes (known answers)", () => {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  assert.is(hex(encodeCbor({ a: 1 })), "a1616101");
  assert.is(hex(encodeCbor(new Uint8Array([0xde, 0xad]))), "42dead");
  // a Unix-millisecond time: major type 0, 8-byte argument, never a float
  assert.is(hex(encodeCbor(1_700_000_000_000)), "1b0000018bcfe56800");
  assert.is(hex(encodeCbor(["x", null, true, -1])), "846178f6f520");
  assert.equal(decodeCbor(encodeCbor({ k: [1, "two", new Uint8Array([3])] })), {
    k: [1, "two", new Uint8Array([3])],
  });
});

test.run();
