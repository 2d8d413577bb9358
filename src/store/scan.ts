/**
 * Mounting the record store: one pass over a flash image that rebuilds the index of newest
 * records and finds where the log's head is. Pure: it reads the image it is given and nothing else.
 *
 * The chain is the run of live sector headers with consecutive sequence numbers ending at the
 * highest one. Entries are parsed in log order from the tail's first entry; an entry counts once
 * its commit mark matches its header and its payload its checksum. Anything else (a torn header,
 * an entry whose end disagrees with the next sector's header, a damaged payload) is stepped over
 * by resynchronising at the next sector's first entry, and counted in the health report.
 */
import { crc32, equal, isErased } from "../bytes.ts";
import {
  decodeEntryHeader,
  decodeSectorHeader,
  encodeCommit,
  ENTRY_HEADER_BYTES,
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
  /** Committed entries whose payload failed its checksum. */
  damagedEntries: number;
  /** Damaged entries that were the newest of their key: data that is gone. */
  lostEntries: number;
  /** The keys whose newest record is gone. */
  lostKeys: number[];
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
  firstEntry: number;
}

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
  const headers: (SectorInfo | null)[] = [];
  for (let i = 0; i < l.sectors; i++) {
    const base = i * l.sectorSize;
    const h = decodeSectorHeader(l, image.subarray(base, base + l.headerSpan));
    const retired = !isErased(image, base + l.retireOffset, base + l.retireOffset + l.retireSpan);
    headers.push(h && !retired ? h : null);
  }
  const index = new Map<number, IndexEntry>();
  const chain = new Map<number, SectorInfo>();
  const health: StoreHealth = {
    ok: true,
    sectors: l.sectors,
    chainSectors: 0,
    liveRecords: 0,
    liveBytes: 0,
    freeBytes: 0,
    tornEntries: 0,
    skippedRegions: 0,
    damagedEntries: 0,
    lostEntries: 0,
    lostKeys: [],
  };
  let head = -1;
  for (let i = 0; i < l.sectors; i++) {
    const h = headers[i];
    if (h && (head < 0 || h.seq > headers[head]!.seq)) head = i;
  }
  if (head < 0) {
    return {
      index,
      chain,
      tailSeq: 1,
      headSeq: 0,
      headIdx: l.sectors - 1,
      headPos: l.dataSize,
      nextSeq: 1,
      health,
    };
  }
  const headSeq = headers[head]!.seq;
  let count = 1;
  while (count < l.sectors) {
    const prev = headers[(head - count + l.sectors) % l.sectors];
    if (!prev || prev.seq !== headSeq - count) break;
    count++;
  }
  const tailSeq = headSeq - count + 1;
  const indexOf = (seq: number) => (((head + seq - headSeq) % l.sectors) + l.sectors) % l.sectors;
  for (let s = tailSeq; s <= headSeq; s++) chain.set(s, headers[indexOf(s)]!);

  const d = l.dataSize;
  const end = (headSeq + 1) * d;
  const read = (pos: number, n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const s = Math.floor((pos + o) / d);
      const off = pos + o - s * d;
      const k = Math.min(n - o, d - off);
      const phys = indexOf(s) * l.sectorSize + l.dataStart + off;
      out.set(image.subarray(phys, phys + k), o);
      o += k;
    }
    return out;
  };
  /** The first entry start at or after sector `from`, or `end` when there is none. */
  const resync = (from: number): number => {
    for (let s = from; s <= headSeq; s++) {
      const fe = chain.get(s)!.firstEntry;
      if (fe !== NO_ENTRY) return s * d + fe;
    }
    return end;
  };
  const damagedSeq = new Map<number, number>();
  let maxSeq = 0;
  let headPos = end;
  let p = resync(tailSeq);
  while (p < end) {
    const sector = Math.floor(p / d);
    if (p + l.entryHeaderSpan > end) {
      // Less than a header's room is left at the very end: blank is the head, else skip it.
      headPos = isErased(read(p, end - p)) ? p : end;
      break;
    }
    const hb = read(p, l.entryHeaderSpan);
    if (isErased(hb)) {
      if (sector === headSeq) {
        headPos = isErased(read(p, end - p)) ? p : end;
        if (headPos === end) health.skippedRegions++;
        break;
      }
      p = resync(sector + 1); // an abandoned remainder of an older sector
      continue;
    }
    const h = decodeEntryHeader(hb);
    if (!h || h.length > MAX_PAYLOAD_ABSOLUTE || h.key < MIN_KEY || h.key > MAX_KEY) {
      if (sector === headSeq) health.tornEntries++;
      else health.skippedRegions++;
      p = resync(sector + 1);
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
      const expected = e >= (s + 1) * d ? NO_ENTRY : e - s * d;
      if (chain.get(s)!.firstEntry !== expected) {
        broken = s;
        break;
      }
    }
    if (h.seq > maxSeq) maxSeq = h.seq;
    if (beyond) {
      health.tornEntries++; // the write stopped before it reached its next sector
      headPos = end;
      break;
    }
    if (broken >= 0) {
      health.tornEntries++;
      p = resync(broken);
      continue;
    }
    const committed = equal(
      read(p + l.commitOffset(h.length), l.commitSpan),
      encodeCommit(l, hb.subarray(0, ENTRY_HEADER_BYTES)),
    );
    if (!committed) {
      health.tornEntries++;
    } else {
      const data = read(p + l.entryHeaderSpan, h.length);
      if (crc32(data) !== h.payloadCrc || (h.flags & FLAG_TOMBSTONE && h.length !== 0)) {
        health.damagedEntries++;
        damagedSeq.set(h.key, Math.max(h.seq, damagedSeq.get(h.key) ?? 0));
      } else {
        const cur = index.get(h.key);
        if (!cur || h.seq >= cur.seq) {
          index.set(h.key, {
            key: h.key,
            seq: h.seq,
            flags: h.flags,
            pos: p,
            extent,
            data,
          });
        }
      }
    }
    p = e;
  }
  for (const [key, seq] of damagedSeq) {
    if (seq > (index.get(key)?.seq ?? 0)) {
      health.lostEntries++;
      health.lostKeys.push(key);
    }
  }
  health.ok = health.lostEntries === 0;
  const notes: string[] = [];
  if (health.lostEntries) notes.push(`${health.lostEntries} record(s) lost to damaged flash`);
  if (health.damagedEntries) notes.push(`${health.damagedEntries} damaged entries skipped`);
  if (health.tornEntries) notes.push(`${health.tornEntries} interrupted writes ignored`);
  if (health.skippedRegions) notes.push(`${health.skippedRegions} unreadable regions skipped`);
  if (notes.length) health.detail = notes.join("; ");
  return { index, chain, tailSeq, headSeq, headIdx: head, headPos, nextSeq: maxSeq + 1, health };
}
