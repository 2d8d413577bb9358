/**
 * The on-flash format of the record store: a circular log over every sector of the partition.
 *
 * Each sector starts with a sector header, then a retire word, then its data area. The data
 * areas of the sectors in the chain, in order of their sector sequence numbers, form one logical
 * byte stream. Entries are appended to that stream and may span sectors:
 *
 *   sector:  [magic "LKL1" | sector seq u32 | first entry u16 | format u16 | crc32]  (16 bytes)
 *            [retire word, 0xFFFFFFFF while live]                                   (4 bytes)
 *            [data area ...]
 *   entry:   [magic "LE" | flags u8 | key u8 | seq u64 | length u32 | payload crc32 | header crc32]
 *            [payload, padded with 0xFF to the write size]
 *            [commit mark: "CMT!" | crc32 of the entry header]  (programmed last, separately)
 *
 * `first entry` is the offset in the data area where the first entry that starts in the sector
 * begins (NO_ENTRY when one entry covers the whole data area): it lets mount resynchronise after
 * a torn write and check that an entry crossing into the sector really ends where it says.
 * Every field is sized up to the part's write size, so each is programmed on its own.
 */
import { crc32 } from "../bytes.ts";
import type { FlashGeometry } from "../flash/driver.ts";

export const SECTOR_MAGIC = 0x4c4b4c31; // "LKL1"
export const FORMAT = 1;
export const NO_ENTRY = 0xffff;
export const ENTRY_MAGIC = 0x4c45; // "LE"
export const COMMIT_MAGIC = 0x434d5421; // "CMT!"
export const FLAG_TOMBSTONE = 0x01;
/** A marker for a record whose newest entry was found damaged (no payload). */
export const FLAG_DAMAGED = 0x02;
export const SECTOR_HEADER_BYTES = 16;
export const RETIRE_BYTES = 4;
export const ENTRY_HEADER_BYTES = 24;
export const COMMIT_BYTES = 8;
/** Largest sequence number the format holds without loss in a JavaScript number. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Byte offsets and sizes that follow from one flash geometry. */
export class Layout {
  readonly sectors: number;
  readonly sectorSize: number;
  readonly writeSize: number;
  readonly pageSize: number;
  readonly headerSpan: number;
  readonly retireOffset: number;
  readonly retireSpan: number;
  /** Offset of the data area inside a sector. */
  readonly dataStart: number;
  /** Bytes of data area in one sector. */
  readonly dataSize: number;
  readonly entryHeaderSpan: number;
  readonly commitSpan: number;

  constructor(g: FlashGeometry) {
    this.sectors = g.size / g.eraseSize;
    this.sectorSize = g.eraseSize;
    this.writeSize = g.writeSize;
    this.pageSize = g.pageSize;
    this.headerSpan = roundUp(SECTOR_HEADER_BYTES, g.writeSize);
    this.retireOffset = this.headerSpan;
    this.retireSpan = roundUp(RETIRE_BYTES, g.writeSize);
    this.dataStart = this.retireOffset + this.retireSpan;
    this.dataSize = g.eraseSize - this.dataStart;
    this.entryHeaderSpan = roundUp(ENTRY_HEADER_BYTES, g.writeSize);
    this.commitSpan = roundUp(COMMIT_BYTES, g.writeSize);
  }

  /** Bytes an entry with `length` payload bytes takes in the log, commit mark included. */
  entryExtent(length: number): number {
    return roundUp(this.entryHeaderSpan + length, this.writeSize) + this.commitSpan;
  }

  /** Offset of the commit mark from the start of an entry. */
  commitOffset(length: number): number {
    return roundUp(this.entryHeaderSpan + length, this.writeSize);
  }
}

export interface SectorHeader {
  seq: number;
  firstEntry: number;
}

export function encodeSectorHeader(l: Layout, h: SectorHeader): Uint8Array {
  const b = new Uint8Array(l.headerSpan).fill(0xff);
  const v = new DataView(b.buffer);
  v.setUint32(0, SECTOR_MAGIC);
  v.setUint32(4, h.seq);
  v.setUint16(8, h.firstEntry);
  v.setUint16(10, FORMAT);
  v.setUint32(12, crc32(b, 0, 12));
  return b;
}

/** Parses a sector header; null when it is not a valid one (blank, torn or foreign). */
export function decodeSectorHeader(l: Layout, b: Uint8Array): SectorHeader | null {
  if (b.length < SECTOR_HEADER_BYTES) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0) !== SECTOR_MAGIC || v.getUint16(10) !== FORMAT) return null;
  if (v.getUint32(12) !== crc32(b, 0, 12)) return null;
  const seq = v.getUint32(4);
  const firstEntry = v.getUint16(8);
  if (seq === 0 || seq === 0xffffffff) return null;
  if (firstEntry !== NO_ENTRY && (firstEntry >= l.dataSize || firstEntry % l.writeSize !== 0)) {
    return null;
  }
  return { seq, firstEntry };
}

export interface EntryHeader {
  key: number;
  flags: number;
  seq: number;
  length: number;
  payloadCrc: number;
}

export function encodeEntryHeader(l: Layout, h: EntryHeader): Uint8Array {
  const b = new Uint8Array(l.entryHeaderSpan).fill(0xff);
  const v = new DataView(b.buffer);
  v.setUint16(0, ENTRY_MAGIC);
  v.setUint8(2, h.flags);
  v.setUint8(3, h.key);
  v.setUint32(4, Math.floor(h.seq / 0x100000000));
  v.setUint32(8, h.seq >>> 0);
  v.setUint32(12, h.length);
  v.setUint32(16, h.payloadCrc);
  v.setUint32(20, crc32(b, 0, 20));
  return b;
}

/** Parses an entry header; null when its magic or checksum is wrong. */
export function decodeEntryHeader(b: Uint8Array): EntryHeader | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint16(0) !== ENTRY_MAGIC) return null;
  if (v.getUint32(20) !== crc32(b, 0, 20)) return null;
  const seq = v.getUint32(4) * 0x100000000 + v.getUint32(8);
  if (seq > MAX_SEQ || seq === 0) return null;
  return {
    flags: v.getUint8(2),
    key: v.getUint8(3),
    seq,
    length: v.getUint32(12),
    payloadCrc: v.getUint32(16),
  };
}

/** The commit mark of an entry: it can only be whole if it was programmed whole. */
export function encodeCommit(l: Layout, header: Uint8Array): Uint8Array {
  const b = new Uint8Array(l.commitSpan).fill(0xff);
  const v = new DataView(b.buffer);
  v.setUint32(0, COMMIT_MAGIC);
  v.setUint32(4, crc32(header, 0, ENTRY_HEADER_BYTES));
  return b;
}
