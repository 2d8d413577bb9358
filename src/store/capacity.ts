/**
 * What a partition holds, and whether that is enough for linkd: the store owns this rule and
 * config.ts asks it (so a `flash` section the store cannot use is refused when the file is read,
 * not at the first write). Config words the message; this module only counts.
 *
 * - `storeCapacity`: the largest record and the most all live records may take together on a
 *   partition of a geometry (what RecordStore enforces);
 * - `MIN_RECORD_BYTES` and `MIN_LIVE_BYTES`: what linkd's own records need;
 * - `capacityShortfall`: null when a geometry is enough, else what it holds and the fewest sectors
 *   of its size that would be enough.
 */
import { type FlashGeometry, MAX_FLASH_BYTES } from "../flash/driver.ts";
import { Layout } from "./layout.ts";
import { MAX_PAYLOAD_ABSOLUTE } from "./scan.ts";

/**
 * The largest record linkd writes: a sealed token record (two tokens of up to 4096 bytes,
 * its other fields, and the seal's overhead). The flash must hold a record of this size.
 */
export const MIN_RECORD_BYTES = 9216;
/** Room that all of linkd's live records (identity, device key, tokens, scopes) need together. */
export const MIN_LIVE_BYTES = 16384;

/** Whether sectors of this geometry can hold a store at all (RecordStore refuses smaller ones). */
export function sectorsHoldEntries(geometry: FlashGeometry): boolean {
  const l = new Layout(geometry);
  return l.dataSize >= 2 * l.entryHeaderSpan;
}

/**
 * What a partition of this geometry holds: the largest record, and the most all live records
 * may take together (half the partition less working room, so reclaim always has space).
 */
export function storeCapacity(geometry: FlashGeometry): { maxPayload: number; liveLimit: number } {
  const l = new Layout(geometry);
  const liveLimit = Math.floor(((l.sectors - 3) * l.dataSize) / 2);
  return {
    liveLimit,
    maxPayload: Math.max(
      0,
      Math.min(MAX_PAYLOAD_ABSOLUTE, Math.floor(liveLimit / 2) - l.entryExtent(0)),
    ),
  };
}

/** Whether the record store on a partition of geometry `g` holds linkd's records. */
function holdsRecords(g: FlashGeometry): boolean {
  if (!sectorsHoldEntries(g)) return false;
  const cap = storeCapacity(g);
  return cap.maxPayload >= MIN_RECORD_BYTES && cap.liveLimit >= MIN_LIVE_BYTES;
}

/** Why a geometry is not enough: what it holds, and how many sectors of its size would be. */
export interface CapacityShortfall {
  readonly sectors: number;
  readonly maxPayload: number;
  readonly liveLimit: number;
  /** The fewest sectors of this `eraseSize` that hold linkd's records, or null when none do. */
  readonly sectorsNeeded: number | null;
}

/** Null when the store on geometry `g` holds linkd's records, else what falls short. */
export function capacityShortfall(g: FlashGeometry): CapacityShortfall | null {
  if (holdsRecords(g)) return null;
  const sectors = g.size / g.eraseSize;
  const { maxPayload, liveLimit } = storeCapacity(g);
  // Capacity grows with the number of sectors: find the fewest that are enough.
  let lo = sectors; // too few
  let hi = Math.floor(MAX_FLASH_BYTES / g.eraseSize);
  if (!holdsRecords({ ...g, size: hi * g.eraseSize })) {
    return { sectors, maxPayload, liveLimit, sectorsNeeded: null };
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (holdsRecords({ ...g, size: mid * g.eraseSize })) hi = mid;
    else lo = mid;
  }
  return { sectors, maxPayload, liveLimit, sectorsNeeded: hi };
}
