import { mulberry32 } from "../../src/prng.ts";

/** Deterministic pseudo-random numbers for tests and benchmarks. */
export const prng = mulberry32;

/** `n` deterministic bytes. */
export function bytesOf(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A payload that names its key and version in its first bytes, the rest pseudo-random. */
export function payload(key: number, version: number, length: number): Uint8Array {
  const b = bytesOf(prng(key * 1_000_003 + version), length);
  const v = new DataView(b.buffer);
  if (length >= 8) {
    v.setUint32(0, key);
    v.setUint32(4, version);
  }
  return b;
}
