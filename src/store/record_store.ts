/**
 * A log-structured record store on NOR flash that survives power loss at any instant.
 *
 * - A record is a (key, sequence number, payload) triple; the newest sequence number of a key
 *   wins. Deleting writes a tombstone.
 * - Every entry is written in full before its commit mark; an entry without its commit mark is
 *   ignored at mount (see layout.ts for the format).
 * - The log runs round all sectors of the partition, so wear is spread evenly. When space runs
 *   low the oldest sector is reclaimed: its live entries are copied to the head (keeping their
 *   sequence numbers, so sealed records still open), then it is retired; it is erased only when
 *   the log comes round to it again.
 * - Mount scans the whole partition once, rebuilds the index, and resynchronises past torn or
 *   damaged regions with the `first entry` field of each sector header.
 */
import { invalidArgument } from "../text.ts";
import { crc32, isErased } from "../bytes.ts";
import { Code, isLinkdError, LinkdError } from "../errors.ts";
import type { FlashDriver } from "../flash/driver.ts";
import { sectorsHoldEntries, storeCapacity } from "./capacity.ts";
import {
  encodeCommit,
  encodeEntryHeader,
  encodeSectorHeader,
  ENTRY_HEADER_BYTES,
  FLAG_DAMAGED,
  FLAG_TOMBSTONE,
  Layout,
  MAX_SEQ,
  NO_ENTRY,
} from "./layout.ts";
import {
  type IndexEntry,
  MAX_KEY,
  MIN_KEY,
  scanLog,
  type SectorInfo,
  type StoreHealth,
} from "./scan.ts";

export { MAX_KEY, MAX_PAYLOAD_ABSOLUTE, MIN_KEY, type StoreHealth } from "./scan.ts";

export interface StoredRecord {
  readonly key: number;
  readonly seq: number;
  readonly data: Uint8Array;
}

export interface StoreStats {
  entriesWritten: number;
  recordsCopied: number;
  sectorsRetired: number;
  sectorsOpened: number;
}

export class RecordStore {
  readonly layout: Layout;
  readonly maxPayload: number;
  readonly stats: StoreStats = {
    entriesWritten: 0,
    recordsCopied: 0,
    sectorsRetired: 0,
    sectorsOpened: 0,
  };
  #flash: FlashDriver;
  #index = new Map<number, IndexEntry>();
  /** Sector headers of the chain, by sector sequence number. */
  #chain = new Map<number, SectorInfo>();
  #tailSeq = 1;
  #headSeq = 0;
  #headIdx = -1;
  /** Logical position of the next byte to write. */
  #headPos = 0;
  #nextSeq = 1;
  #health!: StoreHealth;
  #broken: LinkdError | null = null;
  readonly #liveLimitBytes: number;

  private constructor(flash: FlashDriver) {
    this.#flash = flash;
    this.layout = new Layout(flash.geometry);
    if (!sectorsHoldEntries(flash.geometry)) {
      throw new LinkdError(
        Code.FLASH_GEOMETRY,
        "Cannot use flash: sectors are too small for the store",
      );
    }
    const cap = storeCapacity(flash.geometry);
    this.maxPayload = cap.maxPayload;
    this.#liveLimitBytes = cap.liveLimit;
  }

  /** Mounts the store on `flash`: scans it once and rebuilds the index. Never writes. */
  static mount(flash: FlashDriver): RecordStore {
    const s = new RecordStore(flash);
    s.#scan();
    return s;
  }

  /** What mount found, with the damaged markers and space as they are now. */
  get health(): StoreHealth {
    const lostKeys = [...this.#index.values()].filter((e) => e.flags & FLAG_DAMAGED).map((e) =>
      e.key
    )
      .sort((a, b) => a - b);
    return {
      ...this.#health,
      lostKeys,
      lostEntries: lostKeys.length,
      ok: lostKeys.length === 0 && !this.#health.unknownLoss && !this.#health.noLog,
      ...this.#space(),
    };
  }

  /**
   * The newest live record of `key`, or null when there is none (or it was deleted).
   * STORE_CORRUPT when its newest entry was damaged: an older value is never returned instead.
   */
  get(key: number): StoredRecord | null {
    checkKey(key);
    const e = this.#index.get(key);
    if (!e || e.flags & FLAG_TOMBSTONE) return null;
    if (e.flags & FLAG_DAMAGED) {
      throw new LinkdError(
        Code.STORE_CORRUPT,
        `Cannot read record ${key}: its newest copy is damaged on flash; write or delete it again`,
      );
    }
    return { key, seq: e.seq, data: e.data.slice() };
  }

  /** Keys that hold a live record (damaged ones included: present, but unreadable). */
  keys(): number[] {
    return [...this.#index.values()].filter((e) => !(e.flags & FLAG_TOMBSTONE)).map((e) => e.key)
      .sort((a, b) => a - b);
  }

  /** Reserves the next sequence number, for a caller that seals it into the payload first. */
  allocateSeq(): number {
    if (this.#nextSeq >= MAX_SEQ) {
      throw new LinkdError(
        Code.STORE_FULL,
        "Cannot allocate a sequence number: the counter is exhausted",
      );
    }
    return this.#nextSeq++;
  }

  /**
   * Writes a record durably and returns its sequence number. When this returns, the record
   * survives any power loss; when it throws, the store holds either the old or the new value.
   */
  put(key: number, data: Uint8Array, seq?: number): number {
    checkKey(key);
    if (!(data instanceof Uint8Array)) throw invalidArgument("data must be a Uint8Array");
    if (data.length > this.maxPayload) {
      throw new LinkdError(
        Code.STORE_TOO_LARGE,
        `Cannot store record ${key}: ${data.length} bytes exceeds the limit of ${this.maxPayload}`,
      );
    }
    this.#checkWritable(key);
    const s = seq ?? this.allocateSeq();
    this.#checkSeq(key, s);
    this.#mutate(() => this.#write(key, s, 0, data));
    return s;
  }

  /** Deletes a record by writing a tombstone. Deleting a missing record is a no-op. */
  delete(key: number): void {
    checkKey(key);
    const e = this.#index.get(key);
    if (!e || e.flags & FLAG_TOMBSTONE) return;
    this.#checkWritable(key);
    const s = this.allocateSeq();
    this.#mutate(() => this.#write(key, s, FLAG_TOMBSTONE, new Uint8Array(0)));
  }

  /**
   * Erases every sector that is not erased and remounts: an empty store. Only for a command that
   * asks for it (provisioning a blank device, repair): it destroys whatever the partition held.
   */
  format(): void {
    this.#mutate(() => {
      for (let i = 0; i < this.layout.sectors; i++) {
        const base = i * this.layout.sectorSize;
        if (!isErased(this.#flash.read(base, this.layout.sectorSize))) this.#flash.erase(i);
      }
      this.#flash.sync();
      this.#scan();
    });
  }

  /**
   * Rewrites the live records and erases every other sector, so that nothing superseded or
   * deleted remains anywhere on the flash (used by logout and factory reset). On a partition
   * with no valid sector (`health.noLog`) that is every sector: it formats it.
   */
  scrub(): void {
    this.#mutate(() => {
      if (this.#chainLength() > 0) {
        this.#ensureSpace(0);
        const lastOld = this.#headSeq;
        this.#headPos = (this.#headSeq + 1) * this.layout.dataSize; // close the head sector
        while (this.#tailSeq <= lastOld) this.#reclaimTail();
      }
      for (let i = 0; i < this.layout.sectors; i++) {
        if (this.#inChain(i)) continue;
        const base = i * this.layout.sectorSize;
        if (!isErased(this.#flash.read(base, this.layout.sectorSize))) this.#flash.erase(i);
      }
      this.#flash.sync();
      // What mount finds now: damage in the sectors erased is gone (damaged markers are carried).
      this.#scan();
    });
  }

  // ── writing ────────────────────────────────────────────────────────────────────────────

  #mutate(fn: () => void): void {
    if (this.#broken) throw this.#broken;
    try {
      fn();
    } catch (e) {
      // The flash may hold a partial write: rebuild the index from what is really there.
      try {
        this.#scan();
      } catch (again) {
        this.#broken = isLinkdError(again) ? again : new LinkdError(
          Code.FLASH_IO,
          "Cannot remount the store after a failed write",
        );
      }
      throw e;
    }
  }

  /**
   * A partition with data but no valid sector is evidence of damage: nothing is written there
   * (a write would erase a sector of it) until a command formats it (repair, factory reset).
   */
  #checkWritable(key: number): void {
    if (this.#health.noLog) {
      throw new LinkdError(
        Code.STORE_CORRUPT,
        `Cannot write record ${key}: the partition holds data but no valid sector; it is left as it is for inspection (see linkd status)`,
      );
    }
  }

  #checkSeq(key: number, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 1 || seq >= this.#nextSeq) {
      throw new RangeError(`Sequence number ${seq} was not allocated by this store`);
    }
    const cur = this.#index.get(key);
    if (cur && seq <= cur.seq) {
      throw new RangeError(`Sequence number ${seq} is not newer than ${cur.seq} for record ${key}`);
    }
  }

  #write(key: number, seq: number, flags: number, data: Uint8Array): void {
    const extent = this.layout.entryExtent(data.length);
    const old = this.#index.get(key);
    const liveAfter = this.#liveBytes() - (old?.extent ?? 0) + extent;
    if (liveAfter > this.#liveLimitBytes) {
      throw new LinkdError(
        Code.STORE_FULL,
        `Cannot store record ${key}: live data would take ${liveAfter} of ${this.#liveLimitBytes} bytes`,
      );
    }
    this.#ensureSpace(extent);
    this.#append(key, seq, flags, data);
    this.#flash.sync();
    this.stats.entriesWritten++;
  }

  /** Half the partition minus working room: what the live records may take at most. */
  #liveBytes(): number {
    let n = 0;
    for (const e of this.#index.values()) n += e.extent;
    return n;
  }

  #chainLength(): number {
    return this.#headSeq - this.#tailSeq + 1;
  }

  #free(): number {
    const d = this.layout.dataSize;
    return (this.layout.sectors - this.#chainLength()) * d +
      ((this.#headSeq + 1) * d - this.#headPos);
  }

  #space(): { liveRecords: number; liveBytes: number; freeBytes: number; chainSectors: number } {
    return {
      liveRecords: this.keys().length,
      liveBytes: this.#liveBytes(),
      freeBytes: this.#free(),
      chainSectors: this.#chainLength(),
    };
  }

  /** Reclaims the oldest sectors until `extent` bytes fit with room to copy every live record. */
  #ensureSpace(extent: number): void {
    let rounds = 0;
    while (this.#free() < extent + this.#liveBytes() + this.layout.dataSize) {
      if (rounds++ > 2 * this.layout.sectors) {
        throw new LinkdError(
          Code.STORE_FULL,
          "Cannot make room in the store: reclaim made no progress",
        );
      }
      this.#reclaimTail();
    }
  }

  /** Copies the live entries that start in the oldest sector to the head, then retires it. */
  #reclaimTail(): void {
    const d = this.layout.dataSize;
    const headFull = this.#headPos === (this.#headSeq + 1) * d;
    if (this.#chainLength() < 1 || (this.#chainLength() === 1 && !headFull)) {
      throw new LinkdError(Code.STORE_FULL, "Cannot reclaim: the store has a single sector in use");
    }
    const start = this.#tailSeq * d;
    const live = [...this.#index.values()].filter((e) => e.pos >= start && e.pos < start + d)
      .sort((a, b) => a.pos - b.pos);
    const copy = live.reduce((n, e) => n + e.extent, 0);
    if (copy > this.#free()) {
      throw new LinkdError(Code.STORE_FULL, "Cannot reclaim: no room to copy the live records");
    }
    for (const e of live) {
      this.#append(e.key, e.seq, e.flags, e.data);
      this.stats.recordsCopied++;
    }
    const idx = this.#indexOf(this.#tailSeq);
    const retireAt = idx * this.layout.sectorSize + this.layout.retireOffset;
    if (isErased(this.#flash.read(retireAt, this.layout.retireSpan))) {
      this.#programSpan(retireAt, new Uint8Array(this.layout.retireSpan)); // all zero: retired
    } else {
      // A retire cut short by power loss left some bits cleared: they cannot be programmed
      // again, and everything live in the sector is copied already, so erase it instead.
      this.#flash.erase(idx);
    }
    this.#flash.sync();
    this.#chain.delete(this.#tailSeq);
    this.#tailSeq++;
    this.stats.sectorsRetired++;
  }

  /** Appends one entry at the head: header and payload, then the commit mark. */
  #append(key: number, seq: number, flags: number, data: Uint8Array): void {
    const l = this.layout;
    const header = encodeEntryHeader(l, {
      key,
      flags,
      seq,
      length: data.length,
      payloadCrc: crc32(data),
    });
    const body = new Uint8Array(l.commitOffset(data.length)).fill(0xff);
    body.set(header, 0);
    body.set(data, l.entryHeaderSpan);
    const start = this.#headPos;
    const end = start + l.entryExtent(data.length);
    this.#stream(body, start, end);
    this.#stream(encodeCommit(l, header.subarray(0, ENTRY_HEADER_BYTES)), start, end);
    this.#index.set(key, { key, seq, flags, pos: start, extent: end - start, data: data.slice() });
  }

  /** Programs `bytes` at the head, page by page, opening sectors as the log crosses into them. */
  #stream(bytes: Uint8Array, entryStart: number, entryEnd: number): void {
    const l = this.layout;
    let i = 0;
    while (i < bytes.length) {
      if (this.#headPos === (this.#headSeq + 1) * l.dataSize) {
        this.#openSector(entryStart, entryEnd);
      }
      const off = this.#headPos - this.#headSeq * l.dataSize;
      const phys = this.#headIdx * l.sectorSize + l.dataStart + off;
      const n = Math.min(bytes.length - i, l.dataSize - off, l.pageSize - (phys % l.pageSize));
      this.#flash.program(phys, bytes.subarray(i, i + n));
      i += n;
      this.#headPos += n;
    }
  }

  /** Erases (when needed) the sector after the head and writes its header. */
  #openSector(entryStart: number, entryEnd: number): void {
    const l = this.layout;
    if (this.#chainLength() >= l.sectors) {
      throw new LinkdError(Code.STORE_FULL, "Cannot open a sector: every sector is in use");
    }
    const seq = this.#headSeq + 1;
    if (seq >= 0xffffffff) {
      throw new LinkdError(
        Code.STORE_FULL,
        "Cannot open a sector: the sector counter is exhausted",
      );
    }
    const idx = (this.#headIdx + 1) % l.sectors;
    const start = seq * l.dataSize;
    let firstEntry: number;
    if (entryStart >= start) firstEntry = entryStart - start;
    else if (entryEnd - start < l.dataSize) firstEntry = entryEnd - start;
    else firstEntry = NO_ENTRY;
    const base = idx * l.sectorSize;
    if (!isErased(this.#flash.read(base, l.sectorSize))) this.#flash.erase(idx);
    this.#programSpan(base, encodeSectorHeader(l, { seq, firstEntry }));
    this.#chain.set(seq, { seq, firstEntry });
    if (this.#chainLength() === 0) this.#tailSeq = seq;
    this.#headSeq = seq;
    this.#headIdx = idx;
    this.stats.sectorsOpened++;
  }

  /** Programs a small aligned field, split at page boundaries. */
  #programSpan(phys: number, bytes: Uint8Array): void {
    const page = this.layout.pageSize;
    for (let i = 0; i < bytes.length;) {
      const n = Math.min(bytes.length - i, page - ((phys + i) % page));
      this.#flash.program(phys + i, bytes.subarray(i, i + n));
      i += n;
    }
  }

  #indexOf(seq: number): number {
    const n = this.layout.sectors;
    return (((this.#headIdx + seq - this.#headSeq) % n) + n) % n;
  }

  #inChain(idx: number): boolean {
    if (this.#chainLength() <= 0) return false;
    const n = this.layout.sectors;
    const back = (this.#headIdx - idx + n) % n;
    return back < this.#chainLength();
  }

  // ── mounting ───────────────────────────────────────────────────────────────────────────

  #scan(): void {
    const l = this.layout;
    const st = scanLog(l, this.#flash.read(0, l.sectors * l.sectorSize));
    this.#index = st.index;
    this.#chain = st.chain;
    this.#tailSeq = st.tailSeq;
    this.#headSeq = st.headSeq;
    this.#headIdx = st.headIdx;
    this.#headPos = st.headPos;
    this.#nextSeq = st.nextSeq;
    this.#health = st.health;
  }
}

function checkKey(key: number): void {
  if (!Number.isInteger(key) || key < MIN_KEY || key > MAX_KEY) {
    throw new RangeError(`Record key must be an integer from ${MIN_KEY} to ${MAX_KEY}, got ${key}`);
  }
}
