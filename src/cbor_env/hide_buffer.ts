/**
 * Evaluated just before cbor-x (see src/cbor.ts): hides Deno's global `Buffer` while cbor-x's
 * encoder looks for it. Deno defines `globalThis.Buffer` as a lazy getter; the first read loads
 * its Node compatibility layer, 11 ms and several MB at every boot on this machine, and cbor-x
 * reads it once at import to choose Node Buffers over plain Uint8Arrays. Hidden, cbor-x takes
 * its Uint8Array path (the browser one) and linkd never loads Node compat.
 * restore_buffer.ts puts the getter back right after, so nothing else sees a difference.
 */
export const savedBuffer: PropertyDescriptor | undefined = Object.getOwnPropertyDescriptor(
  globalThis,
  "Buffer",
);
if (savedBuffer?.configurable) {
  Object.defineProperty(globalThis, "Buffer", {
    value: undefined,
    configurable: true,
    writable: true,
    enumerable: false,
  });
}
