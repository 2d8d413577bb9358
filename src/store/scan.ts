/**
 * Mounting the record store: one pass over a flash image that rebuilds the index of newest
 * records and finds where the log's head is. Pure: it reads the image it is given and nothing else.
 *
 * The chain is the run of live sector headers with consecutive sequence numbers ending at the
 * highest one. Entries are parsed in log order from the tail's first entry; an entry counts once
 * its commit mark matches its header and its payload its checksum.
 *
 * Power loss leaves an interrupted write at the end of the log: it is ignored, and the writer
 * goes on in a fresh sector. Damage (a flipped bit) is told apart from that and reported:
 * - an unreadable entry header: the scan steps forward to the next valid header, so the entries
 *   after it are kept; valid entries after garbage in the same sector mean damage, not power loss;
 * - an unreadable sector header between two chain sectors (or over a head sector whose entries
 *   are newer than everything else) is bridged, the sector's entries found by the same scan;
 * - a committed entry whose payload fails its checksum, when it was the newest of its key,
 *   becomes a damaged marker: the key reads as damaged (never as an older value), and the marker
 *   is carried by reclaim, so the loss stays reported until the key is written or deleted again;
 * - a partition with no valid sector header is blank only when it is erased, or when all it holds
 *   is one torn sector header (the very first opening, cut off: nothing follows a header until it
 *   is whole). Anything else (a flipped bit in the only sector header, a random or foreign image)
 *   is damage: `noLog`, reported, and the store writes nothing there until it is formatted.
 */
import { crc32, isErased } from "../bytes.ts";
import {
  COMMIT_MAGIC,
  decodeEntryHeader,
  decodeSectorHeader,
  encodeCommit,
  ENTRY_HEADER_BYTES,
  FLAG_DAMAGED,
  FLAG_TOMBSTONE,
  type Layout,
  NO_ENTRY,
} from "./layout.ts";

export const MIN_KEY = 1;
export const MAX_KEY = 254;
/** No entry is larger than this, whatever the partition. */
export const MAX_PAYLOAD_ABSOLUTE = 64 * 1024;

/** What mount found and what it had to step over. Nothing here is secret. */
export interface StoreHealth {
  /** False when committed data was lost (a damaged entry newer than what survives). */
  ok: boolean;
  /** One line for people, present when anything was recovered or lost. */
  detail?: string;
  sectors: number;
  chainSectors: number;
  liveRecords: number;
  liveBytes: number;
  freeBytes: number;
  /** Entries whose commit mark was missing: writes cut by power loss. */
  tornEntries: number;
  /** Regions with no valid entry header that mount skipped. */
  skippedRegions: number;
  /** Sectors whose own header was unreadable, kept in the chain by their neighbours. */
  bridgedSectors: number;
  /** Valid entries found after garbage in the same sector: something between them was lost. */
  unknownLoss: boolean;
  /** Committed entries whose payload failed its checksum. */
  damagedEntries: number;
  /** Damaged entries that were the newest of their key: data that is gone. */
  lostEntries: number;
  /** The keys whose newest record is gone (damaged markers in the index). */
  lostKeys: number[];
  /** The partition holds data but not one valid sector header: damaged, not blank. */
  noLog: boolean;
}

export interface IndexEntry {
  key: number;
  seq: number;
  flags: number;
  /** Logical position of the entry in the log (sector seq × data size + offset). */
  pos: number;
  extent: number;
  data: Uint8Array;
}

export interface SectorInfo {
  seq: number;
  /** Where the first entry starting in the sector begins; UNKNOWN_ENTRY for a bridged sector. */
  firstEntry: number;
}

/** The first-entry field of a bridged sector, whose header could not be read. */
export const UNKNOWN_ENTRY = -1;

/** The log as mount found it: what the store needs to go on writing. */
export interface LogState {
  index: Map<number, IndexEntry>;
  /** Sector headers of the chain, by sector sequence number. */
  chain: Map<number, SectorInfo>;
  tailSeq: number;
  headSeq: number;
  /** Physical index of the head sector. */
  headIdx: number;
  /** Logical position of the next byte to write. */
  headPos: number;
  nextSeq: number;
  health: StoreHealth;
}

export function scanLog(l: Layout, image: Uint8Array): LogState {
  const n = l.sectors;
  const headers: (SectorInfo | null)[] = [];
  /** A sector whose header region holds something that is not a valid, live header. */
  const unreadable: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const base = i * l.sectorSize;
    const h = decodeSectorHeader(l, image.subarray(base, base + l.headerSpan));
    const retired = isRetired(image, base + l.retireOffset, l.retireSpan);
    headers.push(h && !retired ? h : null);
    unreadable.push(!h && !retired && !isErased(image, base, base + l.headerSpan));
  }
  const index = new Map<number, IndexEntry>();
  const chain = new Map<number, SectorInfo>();
  const health: StoreHealth = {
    ok: true,
    sectors: n,
    chainSectors: 0,
    liveRecords: 0,
    liveBytes: 0,
    freeBytes: 0,
    tornEntries: 0,
    skippedRegions: 0,
    bridgedSectors: 0,
    unknownLoss: false,
    damagedEntries: 0,
    lostEntries: 0,
    lostKeys: [],
    noLog: false,
  };
  let head = -1;
  for (let i = 0; i < n; i++) {
    const h = headers[i];
    if (h && (head < 0 || h.seq > headers[head]!.seq)) head = i;
  }
  if (head < 0) {
    if (!blankOrTornOpening(l, image)) {
      health.ok = false;
      health.noLog = true;
      health.detail =
        "the partition is not erased but holds no valid sector: its log is damaged (or it is not a linkd store)";
    }
    return {
      index,
      chain,
      tailSeq: 1,
      headSeq: 0,
      headIdx: n - 1,
      headPos: l.dataSize,
      nextSeq: 1,
      health,
    };
  }
  let headSeq = headers[head]!.seq;
  // Walk back from the head; one unreadable header is bridged when the sector before it fits.
  let count = 1;
  const bridged = new Set<number>();
  while (count < n) {
    const at = (head - count + n) % n;
    const prev = headers[at];
    if (prev && prev.seq === headSeq - count) {
      count++;
      continue;
    }
    const before = headers[(head - count - 1 + n) % n];
    if (
      !prev && unreadable[at] && count + 1 < n && before && before.seq === headSeq - count - 1 &&
      headSeq - count > 0
    ) {
      bridged.add(at);
      count++;
      continue;
    }
    break;
  }
  // An unreadable header just before the chain is its tail, damaged (or a torn erase, whose
  // stale entries lose to newer sequence numbers): keep it, so its live records are not dropped.
  const beforeTail = (head - count + n) % n;
  if (count + 1 < n && !headers[beforeTail] && unreadable[beforeTail] && headSeq - count > 0) {
    bridged.add(beforeTail);
    count++;
  }
  const tailSeq = headSeq - count + 1;
  const indexOf = (seq: number) => (((head + seq - headSeq) % n) + n) % n;
  for (let s = tailSeq; s <= headSeq; s++) {
    const i = indexOf(s);
    chain.set(s, bridged.has(i) ? { seq: s, firstEntry: UNKNOWN_ENTRY } : headers[i]!);
  }
  health.bridgedSectors = bridged.size;

  const d = l.dataSize;
  const ws = l.writeSize;
  let end = (headSeq + 1) * d;
  const read = (pos: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    let o = 0;
    while (o < len) {
      const s = Math.floor((pos + o) / d);
      const off = pos + o - s * d;
      const k = Math.min(len - o, d - off);
      const phys = indexOf(s) * l.sectorSize + l.dataStart + off;
      out.set(image.subarray(phys, phys + k), o);
      o += k;
    }
    return out;
  };
  const validHeaderAt = (q: number) => {
    if (q + l.entryHeaderSpan > end) return null;
    const h = decodeEntryHeader(read(q, l.entryHeaderSpan));
    return h && h.length <= MAX_PAYLOAD_ABSOLUTE && h.key >= MIN_KEY && h.key <= MAX_KEY ? h : null;
  };
  /** The first entry start at or after sector `from`, or `end` when there is none. */
  const resync = (from: number): number => {
    for (let s = from; s <= headSeq; s++) {
      const fe = chain.get(s)!.firstEntry;
      if (fe === UNKNOWN_ENTRY) {
        const q = scanForward(s * d, false);
        if (q !== null) return q;
        continue;
      }
      if (fe !== NO_ENTRY) return s * d + fe;
    }
    return end;
  };
  /**
   * The next valid entry header after `from`, stepping write unit by write unit and jumping to
   * a sector's first entry where it is known. `fromGarbage`: `from` is unreadable bytes, so
   * finding a header in the same sector means damage.
   */
  const scanForward = (from: number, fromGarbage: boolean): number | null => {
    const sector = Math.floor(from / d);
    for (let q = from; q < end;) {
      const s = Math.floor(q / d);
      if (s !== sector && q === s * d) {
        const fe = chain.get(s)?.firstEntry ?? UNKNOWN_ENTRY;
        if (fe === NO_ENTRY) {
          q += d;
          continue;
        }
        if (fe !== UNKNOWN_ENTRY) q = s * d + fe;
      }
      if (validHeaderAt(q)) {
        if (fromGarbage && s === sector) health.unknownLoss = true;
        return q;
      }
      q += ws;
    }
    return null;
  };

  /** True when an aligned commit mark magic lies in [from, to): a complete entry once was there. */
  const commitMagicIn = (from: number, to: number): boolean => {
    for (let q = from; q + 4 <= to; q += ws) {
      const b = read(q, 4);
      if (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 === COMMIT_MAGIC) {
        return true;
      }
    }
    return false;
  };
  const damaged = new Map<number, { seq: number; pos: number; extent: number }>();
  const markDamaged = (key: number, seq: number, pos: number, extent: number) => {
    health.damagedEntries++;
    const prev = damaged.get(key);
    if (!prev || seq > prev.seq) damaged.set(key, { seq, pos, extent });
  };
  let maxSeq = 0;
  let headPos = end;
  /** The last entry parsed was an interrupted write: the writer goes on in a fresh sector. */
  let tornTail = false;
  /** Where an entry that ran past the last sector of the chain starts. */
  let beyondAt: number | null = null;
  const parse = (start: number, stopAt: number): void => {
    let p = start;
    while (p < stopAt) {
      const sector = Math.floor(p / d);
      if (p + l.entryHeaderSpan > end) {
        // Less than a header's room is left at the very end: blank is the head, else skip it.
        headPos = isErased(read(p, end - p)) ? p : end;
        return;
      }
      const hb = read(p, l.entryHeaderSpan);
      if (isErased(hb)) {
        if (sector === headSeq) {
          const blank = isErased(read(p, end - p));
          headPos = blank && !tornTail ? p : end;
          if (!blank) health.skippedRegions++;
          return;
        }
        p = resync(sector + 1); // an abandoned remainder of an older sector
        continue;
      }
      const h = validHeaderAt(p);
      if (!h) {
        const q = scanForward(p + ws, true);
        if (q === null) {
          // An interrupted header at the very end of the log never has a commit mark after it
          // (the mark is programmed last, and nothing valid follows): one means damage.
          if (commitMagicIn(p, end)) {
            health.unknownLoss = true;
            health.skippedRegions++;
          } else health.tornEntries++;
          headPos = end;
          return;
        }
        // After an interrupted header the writer starts afresh at the top of a new sector. Valid
        // entries anywhere else after garbage (in the same sector, or after an entry that ran
        // on into the next) mean a complete entry was damaged.
        if (Math.floor(q / d) === sector) health.skippedRegions++;
        else if (q % d !== 0) {
          health.unknownLoss = true;
          health.skippedRegions++;
        } else health.tornEntries++;
        p = q;
        continue;
      }
      const extent = l.entryExtent(h.length);
      const e = p + extent;
      // Every sector the entry runs into must agree on where it ends.
      let broken = -1;
      let beyond = false;
      for (let s = sector + 1; s <= Math.floor((e - 1) / d); s++) {
        if (s > headSeq) {
          beyond = true;
          break;
        }
        const fe = chain.get(s)!.firstEntry;
        const expected = e >= (s + 1) * d ? NO_ENTRY : e - s * d;
        if (fe !== UNKNOWN_ENTRY && fe !== expected) {
          broken = s;
          break;
        }
      }
      if (h.seq > maxSeq) maxSeq = h.seq;
      if (beyond) {
        health.tornEntries++; // the write stopped before it reached its next sector
        beyondAt = p;
        headPos = end;
        return;
      }
      tornTail = false;
      if (broken >= 0) {
        health.tornEntries++;
        p = resync(broken);
        continue;
      }
      // A mark one bit short is whole: damage to a written mark, or a write cut at its very
      // last bit, whose value is then the one being written (allowed either way); the payload
      // checksum below still has to hold.
      let committed = bitsApart(
        read(p + l.commitOffset(h.length), l.commitSpan),
        encodeCommit(l, hb.subarray(0, ENTRY_HEADER_BYTES)),
      ) <= 1;
      // After an interrupted write the writer moves to a fresh sector, so an entry without its
      // commit mark that the next entry follows directly was committed once: its mark is damaged.
      const followed = !committed && e < end && e % d !== 0 && validHeaderAt(e) !== null;
      tornTail = !committed && !followed;
      if (tornTail) {
        health.tornEntries++;
      } else {
        const data = read(p + l.entryHeaderSpan, h.length);
        const flagsOk = (h.flags & ~(FLAG_TOMBSTONE | FLAG_DAMAGED)) === 0 &&
          (h.flags === 0 || h.length === 0) && h.flags !== (FLAG_TOMBSTONE | FLAG_DAMAGED);
        if (followed && crc32(data) === h.payloadCrc && flagsOk) committed = true;
        if (!committed || crc32(data) !== h.payloadCrc || !flagsOk) {
          markDamaged(h.key, h.seq, p, extent);
        } else {
          const cur = index.get(h.key);
          if (!cur || h.seq >= cur.seq) {
            index.set(h.key, { key: h.key, seq: h.seq, flags: h.flags, pos: p, extent, data });
          }
        }
      }
      p = e;
    }
  };
  parse(resync(tailSeq), end);

  // The sector after the head, when its header is unreadable but it holds entries newer than
  // everything in the chain, was the head: its header was damaged after it was written.
  const next = (head + 1) % n;
  // Or it completes an entry that ran into it: the writer opens a sector before writing on.
  if (count < n && unreadable[next]) {
    const oldEnd = end;
    end = oldEnd + d;
    chain.set(headSeq + 1, { seq: headSeq + 1, firstEntry: UNKNOWN_ENTRY });
    let start: number | null = null;
    const spanning = beyondAt === null ? null : validHeaderAt(beyondAt);
    if (spanning && beyondAt! + l.entryExtent(spanning.length) <= end) {
      const commit = read(beyondAt! + l.commitOffset(spanning.length), l.commitSpan);
      if (bitsApart(commit, encodeCommit(l, read(beyondAt!, ENTRY_HEADER_BYTES))) <= 1) {
        start = beyondAt;
      }
    }
    if (start === null) {
      const first = scanForward(oldEnd, false);
      const h = first === null ? null : validHeaderAt(first);
      if (h && h.seq > maxSeq) start = first;
    }
    if (start !== null) {
      if (start === beyondAt) health.tornEntries--; // it was whole after all
      headSeq++;
      head = next;
      health.bridgedSectors++;
      headPos = end;
      parse(start, end);
    } else {
      chain.delete(headSeq + 1); // a torn sector opening, or stale data: not part of the log
      end = oldEnd;
    }
  }

  for (const [key, dmg] of damaged) {
    if (dmg.seq > (index.get(key)?.seq ?? 0)) {
      // The newest of the key is unreadable: mark it, never fall back to an older value.
      index.set(key, {
        key,
        seq: dmg.seq,
        flags: FLAG_DAMAGED,
        pos: dmg.pos,
        extent: dmg.extent,
        data: new Uint8Array(0),
      });
    }
  }
  for (const e of index.values()) {
    if (e.flags & FLAG_DAMAGED) {
      health.lostEntries++;
      health.lostKeys.push(e.key);
    }
  }
  health.ok = health.lostEntries === 0 && !health.unknownLoss && !health.noLog;
  const notes: string[] = [];
  if (health.lostEntries) notes.push(`${health.lostEntries} record(s) lost to damaged flash`);
  if (health.unknownLoss) notes.push("a damaged region may have held records");
  if (health.damagedEntries) notes.push(`${health.damagedEntries} damaged entries skipped`);
  if (health.bridgedSectors) notes.push(`${health.bridgedSectors} damaged sector headers bridged`);
  if (health.tornEntries) notes.push(`${health.tornEntries} interrupted writes ignored`);
  if (health.skippedRegions) notes.push(`${health.skippedRegions} unreadable regions skipped`);
  if (notes.length) health.detail = notes.join("; ");
  return { index, chain, tailSeq, headSeq, headIdx: head, headPos, nextSeq: maxSeq + 1, health };
}

/**
 * True for an erased partition, or one whose only programmed bytes lie in one sector's header
 * field: a first sector opening cut by power loss (the header is programmed before anything
 * else, so nothing can follow it until it is whole).
 */
function blankOrTornOpening(l: Layout, image: Uint8Array): boolean {
  let torn = 0;
  for (let i = 0; i < l.sectors; i++) {
    const base = i * l.sectorSize;
    if (!isErased(image, base + l.headerSpan, base + l.sectorSize)) return false;
    if (!isErased(image, base, base + l.headerSpan) && ++torn > 1) return false;
  }
  return true;
}

/**
 * A sector is retired when its retire word was programmed to zero. A torn program may clear
 * only some bits and a flipped bit clears one: most bits cleared means retired, so one flipped
 * bit cannot drop a live sector (and a half-retired one stays in the log, which is safe: its
 * live entries were already copied, with the same sequence numbers).
 */
function isRetired(image: Uint8Array, start: number, span: number): boolean {
  let zeros = 0;
  for (let i = start; i < start + span; i++) {
    for (let b = image[i]!; b !== 0xff; b |= b + 1) zeros++; // counts the zero bits
  }
  return zeros * 2 >= span * 8;
}

/** How many bits differ between two arrays of the same length. */
function bitsApart(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    for (let x = a[i]! ^ b[i]!; x; x &= x - 1) n++;
  }
  return n;
}
