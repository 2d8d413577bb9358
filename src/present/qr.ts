/**
 * A QR Code encoder (ISO/IEC 18004), just what linkd needs to show a verification URI: byte mode
 * (UTF-8), error correction level L or M, versions 1–40 (the smallest that holds the text), the
 * mask with the lowest penalty score. The result is the module matrix without quiet zone;
 * whoever draws it adds the quiet zone.
 */

export type EccLevel = "L" | "M";

export interface QrCode {
  version: number;
  ecl: EccLevel;
  mask: number;
  /** Modules per side (17 + 4 × version). */
  size: number;
  /** `modules[y][x]`: true = dark. */
  modules: boolean[][];
}

// Per version 1..40 (index 0 unused): error correction codewords per block, and blocks.
// deno-fmt-ignore
const ECC_PER_BLOCK: Record<EccLevel, readonly number[]> = {
  L: [
    -1,
     7, 10, 15, 20, 26, 18, 20, 24, 30, 18,
    20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
    28, 28, 30, 30, 26, 28, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
  ],
  M: [
    -1,
    10, 16, 26, 18, 24, 16, 18, 22, 22, 26,
    30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  ],
};
// deno-fmt-ignore
const BLOCKS: Record<EccLevel, readonly number[]> = {
  L: [
    -1,
     1,  1,  1,  1,  1,  2,  2,  2,  2,  4,
     4,  4,  4,  4,  6,  6,  6,  6,  7,  8,
     8,  9,  9, 10, 12, 12, 12, 13, 14, 15,
    16, 17, 18, 19, 19, 20, 21, 22, 24, 25,
  ],
  M: [
    -1,
     1,  1,  1,  2,  2,  4,  4,  4,  5,  5,
     5,  8,  9,  9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29,
    31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
  ],
};
/** The two format-information bits of each level. */
const ECL_BITS: Record<EccLevel, number> = { L: 1, M: 0 };

/** Modules left for data and error correction (all codewords plus remainder bits). */
function rawDataModules(ver: number): number {
  let n = (16 * ver + 128) * ver + 64;
  if (ver >= 2) {
    const align = Math.floor(ver / 7) + 2;
    n -= (25 * align - 10) * align - 55;
    if (ver >= 7) n -= 36;
  }
  return n;
}

/** Data codewords of a version and level. */
export function dataCodewords(ver: number, ecl: EccLevel): number {
  return Math.floor(rawDataModules(ver) / 8) - ECC_PER_BLOCK[ecl][ver]! * BLOCKS[ecl][ver]!;
}

/** How many bytes byte mode holds at a version and level. */
export function byteCapacity(ver: number, ecl: EccLevel): number {
  const countBits = ver <= 9 ? 8 : 16;
  return Math.floor((dataCodewords(ver, ecl) * 8 - 4 - countBits) / 8);
}

// GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
function gfMul(x: number, y: number): number {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11D);
    z ^= ((y >>> i) & 1) * x;
  }
  return z & 0xff;
}

function rsDivisor(degree: number): number[] {
  const result = new Array<number>(degree).fill(0);
  result[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < degree; j++) {
      result[j] = gfMul(result[j]!, root);
      if (j + 1 < degree) result[j] = result[j]! ^ result[j + 1]!;
    }
    root = gfMul(root, 0x02);
  }
  return result;
}

function rsRemainder(data: readonly number[], divisor: readonly number[]): number[] {
  const result = new Array<number>(divisor.length).fill(0);
  for (const b of data) {
    const factor = b ^ result.shift()!;
    result.push(0);
    for (let i = 0; i < divisor.length; i++) result[i] = result[i]! ^ gfMul(divisor[i]!, factor);
  }
  return result;
}

/** Data codewords split into blocks, each with its error correction, interleaved. */
function addEccAndInterleave(data: readonly number[], ver: number, ecl: EccLevel): number[] {
  const numBlocks = BLOCKS[ecl][ver]!;
  const eccLen = ECC_PER_BLOCK[ecl][ver]!;
  const rawCodewords = Math.floor(rawDataModules(ver) / 8);
  const numShort = numBlocks - (rawCodewords % numBlocks);
  const shortLen = Math.floor(rawCodewords / numBlocks);
  const divisor = rsDivisor(eccLen);
  const blocks: number[][] = [];
  for (let i = 0, k = 0; i < numBlocks; i++) {
    const n = shortLen - eccLen + (i < numShort ? 0 : 1);
    const dat = data.slice(k, k + n);
    k += n;
    const ecc = rsRemainder(dat, divisor);
    if (i < numShort) dat.push(-1); // a hole, so all blocks interleave alike
    blocks.push([...dat, ...ecc]);
  }
  const out: number[] = [];
  for (let i = 0; i < blocks[0]!.length; i++) {
    for (let j = 0; j < blocks.length; j++) {
      if (i !== shortLen - eccLen || j >= numShort) out.push(blocks[j]![i]!);
    }
  }
  return out;
}

function alignmentPositions(ver: number): number[] {
  if (ver === 1) return [];
  const num = Math.floor(ver / 7) + 2;
  const step = ver === 32 ? 26 : Math.ceil((ver * 4 + 4) / (num * 2 - 2)) * 2;
  const result = [6];
  for (let pos = ver * 4 + 10; result.length < num; pos -= step) result.splice(1, 0, pos);
  return result;
}

class Matrix {
  readonly size: number;
  readonly dark: boolean[][];
  readonly fn: boolean[][];

  constructor(size: number) {
    this.size = size;
    this.dark = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
    this.fn = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
  }

  setFn(x: number, y: number, dark: boolean): void {
    this.dark[y]![x] = dark;
    this.fn[y]![x] = true;
  }
}

function drawFunctionPatterns(m: Matrix, ver: number): void {
  const size = m.size;
  for (let i = 0; i < size; i++) {
    m.setFn(6, i, i % 2 === 0);
    m.setFn(i, 6, i % 2 === 0);
  }
  const finder = (cx: number, cy: number) => {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        const x = cx + dx, y = cy + dy;
        if (x >= 0 && x < size && y >= 0 && y < size) m.setFn(x, y, d !== 2 && d !== 4);
      }
    }
  };
  finder(3, 3);
  finder(size - 4, 3);
  finder(3, size - 4);
  const pos = alignmentPositions(ver);
  const last = pos.length - 1;
  for (let i = 0; i < pos.length; i++) {
    for (let j = 0; j < pos.length; j++) {
      if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) continue;
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          m.setFn(pos[i]! + dx, pos[j]! + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
        }
      }
    }
  }
  drawFormatBits(m, "M", 0); // reserves the area; redrawn with the real mask later
  if (ver >= 7) {
    let rem = ver;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1F25);
    const bits = (ver << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const bit = ((bits >>> i) & 1) !== 0;
      const a = size - 11 + (i % 3), b = Math.floor(i / 3);
      m.setFn(a, b, bit);
      m.setFn(b, a, bit);
    }
  }
}

function drawFormatBits(m: Matrix, ecl: EccLevel, mask: number): void {
  const data = (ECL_BITS[ecl] << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const bit = (i: number) => ((bits >>> i) & 1) !== 0;
  const size = m.size;
  for (let i = 0; i <= 5; i++) m.setFn(8, i, bit(i));
  m.setFn(8, 7, bit(6));
  m.setFn(8, 8, bit(7));
  m.setFn(7, 8, bit(8));
  for (let i = 9; i < 15; i++) m.setFn(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) m.setFn(size - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) m.setFn(8, size - 15 + i, bit(i));
  m.setFn(8, size - 8, true); // the dark module
}

function drawCodewords(m: Matrix, data: readonly number[]): void {
  const size = m.size;
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < size; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (!m.fn[y]![x] && i < data.length * 8) {
          m.dark[y]![x] = ((data[i >>> 3]! >>> (7 - (i & 7))) & 1) !== 0;
          i++;
        }
      }
    }
  }
}

function maskBit(mask: number, x: number, y: number): boolean {
  switch (mask) {
    case 0:
      return (x + y) % 2 === 0;
    case 1:
      return y % 2 === 0;
    case 2:
      return x % 3 === 0;
    case 3:
      return (x + y) % 3 === 0;
    case 4:
      return (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0;
    case 5:
      return ((x * y) % 2) + ((x * y) % 3) === 0;
    case 6:
      return (((x * y) % 2) + ((x * y) % 3)) % 2 === 0;
    default:
      return (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
  }
}

function applyMask(m: Matrix, mask: number): void {
  for (let y = 0; y < m.size; y++) {
    for (let x = 0; x < m.size; x++) {
      if (!m.fn[y]![x] && maskBit(mask, x, y)) m.dark[y]![x] = !m.dark[y]![x];
    }
  }
}

/** The penalty score of ISO/IEC 18004 section 7.8.3 (lower is better). */
export function penalty(modules: readonly (readonly boolean[])[]): number {
  const size = modules.length;
  const at = (x: number, y: number) => modules[y]![x]!;
  let score = 0;
  // N1: runs of five or more of one colour in a row or column.
  for (let pass = 0; pass < 2; pass++) {
    for (let a = 0; a < size; a++) {
      let run = 1;
      for (let b = 1; b <= size; b++) {
        const same = b < size &&
          (pass === 0 ? at(b, a) === at(b - 1, a) : at(a, b) === at(a, b - 1));
        if (same) run++;
        else {
          if (run >= 5) score += 3 + (run - 5);
          run = 1;
        }
      }
    }
  }
  // N2: 2×2 blocks of one colour.
  for (let y = 0; y < size - 1; y++) {
    for (let x = 0; x < size - 1; x++) {
      const c = at(x, y);
      if (c === at(x + 1, y) && c === at(x, y + 1) && c === at(x + 1, y + 1)) score += 3;
    }
  }
  // N3: 1:1:3:1:1 finder-like patterns with four light modules on one side.
  const patterns = [
    [true, false, true, true, true, false, true, false, false, false, false],
    [false, false, false, false, true, false, true, true, true, false, true],
  ];
  for (let pass = 0; pass < 2; pass++) {
    for (let a = 0; a < size; a++) {
      for (let b = 0; b + 11 <= size; b++) {
        for (const p of patterns) {
          let hit = true;
          for (let k = 0; k < 11 && hit; k++) {
            hit = (pass === 0 ? at(b + k, a) : at(a, b + k)) === p[k];
          }
          if (hit) score += 40;
        }
      }
    }
  }
  // N4: the share of dark modules away from 50 %.
  let darkCount = 0;
  for (const row of modules) for (const d of row) darkCount += +d;
  const total = size * size;
  score += (Math.ceil(Math.abs(darkCount * 20 - total * 10) / total) - 1) * 10;
  return score;
}

/**
 * The smallest version (1–40) whose byte mode holds `n` bytes at `ecl` (after an ECI header of
 * 12 bits when `eci`), or null.
 */
export function versionFor(n: number, ecl: EccLevel, eci = false): number | null {
  for (let v = 1; v <= 40; v++) {
    const bits = (eci ? 12 : 0) + 4 + (v <= 9 ? 8 : 16) + 8 * n;
    if (bits <= dataCodewords(v, ecl) * 8) return v;
  }
  return null;
}

/**
 * Encodes `text` (as UTF-8, byte mode) at level `ecl` in the smallest version that holds it.
 * Text beyond ASCII is preceded by ECI 26 (UTF-8), without which decoders guess the charset
 * (zbar reads short UTF-8 as Big5). Throws RangeError when even version 40 is too small.
 */
export function encodeQr(text: string, ecl: EccLevel = "M"): QrCode {
  const bytes = new TextEncoder().encode(text);
  const eci = bytes.some((b) => b >= 0x80);
  const ver = versionFor(bytes.length, ecl, eci);
  if (ver === null) throw new RangeError(`${bytes.length} bytes do not fit a QR code at ${ecl}`);
  const capacityBits = dataCodewords(ver, ecl) * 8;
  const bits: number[] = [];
  const put = (v: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) bits.push((v >>> i) & 1);
  };
  if (eci) {
    put(0b0111, 4);
    put(26, 8);
  }
  put(0b0100, 4);
  put(bytes.length, ver <= 9 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  put(0, Math.min(4, capacityBits - bits.length));
  put(0, (8 - (bits.length % 8)) % 8);
  const data: number[] = [];
  for (let i = 0; i < bits.length; i += 8) {
    let v = 0;
    for (let k = 0; k < 8; k++) v = (v << 1) | bits[i + k]!;
    data.push(v);
  }
  for (let pad = 0xEC; data.length < capacityBits / 8; pad ^= 0xEC ^ 0x11) data.push(pad);

  const codewords = addEccAndInterleave(data, ver, ecl);
  const size = ver * 4 + 17;
  let best: { mask: number; modules: boolean[][]; score: number } | null = null;
  for (let mask = 0; mask < 8; mask++) {
    const m = new Matrix(size);
    drawFunctionPatterns(m, ver);
    drawCodewords(m, codewords);
    applyMask(m, mask);
    drawFormatBits(m, ecl, mask);
    const score = penalty(m.dark);
    if (best === null || score < best.score) best = { mask, modules: m.dark, score };
  }
  return { version: ver, ecl, mask: best!.mask, size, modules: best!.modules };
}
