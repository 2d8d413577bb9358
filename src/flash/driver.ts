/**
 * The flash driver interface. The record store is written against this and nothing else, so the
 * same store runs on the NOR emulator in tests and on a real MTD partition on the speaker.
 *
 * Semantics every driver keeps (the contract suite in test/support/flash_contract.ts checks each):
 * - erased bytes read 0xFF; `erase` sets a whole sector to 0xFF;
 * - `program` only clears bits, must start and end on a `writeSize` boundary, must stay within
 *   one page, and every target byte must be erased (0xFF) beforehand;
 * - `read` may cross page and sector boundaries;
 * - `sync` returns once everything programmed or erased before it is durable.
 * All calls are synchronous: a SPI NOR page program takes under a millisecond and a sector
 * erase tens of milliseconds, and deterministic sequencing is what makes power-cut testing exact.
 */

export interface FlashGeometry {
  /** Total size in bytes, a multiple of `eraseSize`. */
  readonly size: number;
  /** Erase unit (a NOR sector), a multiple of `pageSize`. */
  readonly eraseSize: number;
  /** Program unit: one program never crosses a page boundary. */
  readonly pageSize: number;
  /** Alignment of program offsets and lengths in bytes (1 for byte-programmable NOR). */
  readonly writeSize: number;
}

export interface FlashDriver {
  readonly geometry: FlashGeometry;
  /** Copies `length` bytes from `offset` into a new array. */
  read(offset: number, length: number): Uint8Array;
  /** Programs `data` at `offset` (aligned, within one page, onto erased bytes). */
  program(offset: number, data: Uint8Array): void;
  /** Erases the sector with index `sector` (0-based). */
  erase(sector: number): void;
  /** Makes all earlier programs and erases durable. */
  sync(): void;
  /** Releases the underlying device or file. */
  close(): void;
}

/** Defaults from CONTRACT.md section 2 and PROTOCOL.md (W25Q128JV-class SPI NOR). */
export const DEFAULT_GEOMETRY: FlashGeometry = {
  size: 65536,
  eraseSize: 4096,
  pageSize: 256,
  writeSize: 4,
};

/** Largest partition `geometryProblem` accepts: 256 MiB. */
export const MAX_FLASH_BYTES = 1 << 28;

/** Returns a reason when the geometry cannot describe a NOR part, else null. */
export function geometryProblem(g: FlashGeometry): string | null {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(g.writeSize) || g.writeSize > 64) return "writeSize must be a power of two up to 64";
  if (!pow2(g.pageSize) || g.pageSize < g.writeSize) {
    return "pageSize must be a power of two of at least writeSize";
  }
  // The store's sector header keeps offsets in 16 bits: sectors of up to 64 KiB (NOR: 4 KiB).
  if (!pow2(g.eraseSize) || g.eraseSize < g.pageSize || g.eraseSize > 1 << 16) {
    return "eraseSize must be a power of two between pageSize and 64 KiB";
  }
  if (!Number.isInteger(g.size) || g.size <= 0 || g.size % g.eraseSize !== 0) {
    return "size must be a positive multiple of eraseSize";
  }
  if (g.size / g.eraseSize < 4) return "the partition needs at least 4 sectors";
  if (g.size > MAX_FLASH_BYTES) return "size must be at most 256 MiB";
  return null;
}
