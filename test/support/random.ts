/** Deterministic pseudo-random numbers for tests and benchmarks (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
