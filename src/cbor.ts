/**
 * CBOR exactly as the bus and the flash records need it: plain RFC 8949, text keys, no cbor-x
 * records extension, no tags for byte strings, minimal-length map headers. Any standard decoder
 * (Python's cbor2, C's tinycbor) reads what this writes.
 */
// The subpath entries are cbor-x's pure JavaScript build. The package's main entry would load
// the optional `cbor-extract` native addon, which is built for Node and crashes Deno.
// The order of these imports is their evaluation order: cbor-x is evaluated with Deno's global
// `Buffer` hidden, so it works on Uint8Arrays and never loads Node compat (hide_buffer.ts).
import "./cbor_env/hide_buffer.ts";
import { Encoder } from "cbor-x/encode";
import { Decoder, setSizeLimits } from "cbor-x/decode";
import "./cbor_env/restore_buffer.ts";
import { Code, LinkdError } from "./errors.ts";

const encoder = new Encoder({
  useRecords: false,
  tagUint8Array: false,
  variableMapSize: true,
  mapsAsObjects: true,
  structuredClone: false,
  pack: false,
});

// `int64AsNumber` (uint64 → number, not BigInt) is a decoder option cbor-x's types omit.
const decoderOptions = {
  useRecords: false,
  int64AsNumber: true,
  mapsAsObjects: true,
  structuredClone: false,
  pack: false,
};
// Hostile input: no map or array may claim more entries than a linkd payload could hold.
setSizeLimits({ maxMapSize: 4096, maxArraySize: 4096, maxObjectSize: 4096 });
const decoder = new Decoder(decoderOptions as ConstructorParameters<typeof Decoder>[0]);

/** Encodes a plain value (maps with text keys, arrays, strings, numbers, booleans, null, bytes). */
export function encodeCbor(value: unknown): Uint8Array {
  const b = encoder.encode(widenIntegers(value));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
}

/**
 * Decodes one CBOR item from untrusted bytes. Anything that is not exactly one well-formed item
 * is a coded error; the caller still validates the shape field by field.
 */
export function decodeCbor(bytes: Uint8Array, what = "CBOR data"): unknown {
  let items: unknown[];
  try {
    items = decoder.decodeMultiple(bytes) as unknown[];
  } catch (e) {
    throw new LinkdError(
      Code.STORE_CORRUPT,
      `Cannot decode ${what}: ${e instanceof Error ? e.message.split("\n")[0] : "malformed"}`,
    );
  }
  if (!Array.isArray(items) || items.length !== 1) {
    throw new LinkdError(Code.STORE_CORRUPT, `Cannot decode ${what}: expected exactly one item`);
  }
  return normalize(items[0]);
}

/**
 * cbor-x writes a whole number beyond 32 bits (every Unix-millisecond time) as a float64; C and
 * Python consumers expect an integer. Such numbers go to the encoder as BigInt, which it writes
 * as a CBOR major type 0/1 integer.
 */
function widenIntegers(v: unknown): unknown {
  if (typeof v === "number") {
    return Number.isSafeInteger(v) && (v > 0xffffffff || v < -0x100000000) ? BigInt(v) : v;
  }
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(widenIntegers);
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = widenIntegers(x);
  return o;
}

/** cbor-x hands back byte strings as views into the input: linkd keeps its own copies. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = normalize(x);
    return o;
  }
  return v;
}
