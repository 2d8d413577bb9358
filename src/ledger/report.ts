/**
 * What the plant does with its ledger: `linkd ledger export` (one JSON object per confirmed
 * device, for the cloud registration) and `linkd ledger verify` (every row checked).
 *
 * Export's fields are CONTRACT.md section 3's words: `serial`, `product_id`, `client_id`,
 * `device_public_key`, `record`, `signature`, `line_public_key` (bytes as lowercase hex; the
 * same record bytes and signature `--record-out` writes), `station`, `provisioned_at` (Unix
 * milliseconds). An unsigned device has `signature` and `line_public_key` null.
 *
 * Verify's problems, one per line (`SERIAL: what`): a record that does not decode or does not
 * match its row, a missing or wrong line signature, a device key or record under two serials
 * (duplicates), a reservation never confirmed and a hole in a numbered series of serials (gaps).
 */
import nacl from "tweetnacl";
import { toHex } from "../bytes.ts";
import { decodeIdentityRecord } from "../records/identity.ts";
import type { LedgerRow } from "./store.ts";

/** At most this many holes are listed per series (a series of a million serials exists). */
const MAX_HOLES_LISTED = 20;

/** The export line of a confirmed row (null for a reservation). */
export function exportLine(row: LedgerRow): string | null {
  if (row.provisioned_at === null || row.record === null || row.device_public_key === null) {
    return null;
  }
  const hex = (b: Uint8Array | null) => (b === null ? null : toHex(b));
  return JSON.stringify({
    serial: row.serial,
    product_id: row.product_id,
    client_id: row.client_id,
    device_public_key: toHex(row.device_public_key),
    record: toHex(row.record),
    signature: hex(row.signature),
    line_public_key: hex(row.line_public_key),
    station: row.station,
    provisioned_at: row.provisioned_at,
  });
}

export interface Problem {
  readonly serial: string;
  readonly what: string;
}

/** The problems of one confirmed row taken alone: its record, and its line signature. */
function rowProblems(row: LedgerRow): string[] {
  if (row.record === null || row.device_public_key === null) return [];
  const out: string[] = [];
  let identity;
  try {
    identity = decodeIdentityRecord(row.record); // rows.ts bounded its size
  } catch {
    return ["the record does not decode as an identity record"];
  }
  const differs: string[] = [];
  if (identity.serial !== row.serial) differs.push("serial");
  if (identity.product_id !== row.product_id) differs.push("product_id");
  if (identity.client_id !== row.client_id) differs.push("client_id");
  if (toHex(identity.device_public_key) !== toHex(row.device_public_key)) {
    differs.push("device_public_key");
  }
  if (identity.provisioned_at !== row.provisioned_at) differs.push("provisioned_at");
  if (differs.length > 0) out.push(`the record does not match its row (${differs.join(", ")})`);
  if (row.signature === null || row.line_public_key === null) {
    out.push("the record is not signed by a line key");
  } else if (!nacl.sign.detached.verify(row.record, row.signature, row.line_public_key)) {
    out.push("the line signature does not verify");
  }
  return out;
}

/** Serials that end in digits, by what comes before the digits and the digits' width. */
function holes(serials: readonly string[]): Problem[] {
  const series = new Map<string, { width: number; prefix: string; numbers: bigint[] }>();
  for (const s of serials) {
    const m = /^(.*?)(\d+)$/.exec(s);
    if (!m) continue;
    const key = `${m[1]}\u0000${m[2]!.length}`;
    const entry = series.get(key) ?? { width: m[2]!.length, prefix: m[1]!, numbers: [] };
    entry.numbers.push(BigInt(m[2]!));
    series.set(key, entry);
  }
  const out: Problem[] = [];
  for (const { width, prefix, numbers } of series.values()) {
    numbers.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let listed = 0;
    let missing = 0n;
    for (let i = 1; i < numbers.length; i++) {
      const gap = numbers[i]! - numbers[i - 1]! - 1n;
      if (gap <= 0n) continue;
      missing += gap;
      if (listed < MAX_HOLES_LISTED) {
        const name = (n: bigint) => `${prefix}${n.toString().padStart(width, "0")}`;
        const from = numbers[i - 1]! + 1n;
        const to = numbers[i]! - 1n;
        out.push({
          serial: name(from),
          what: from === to
            ? "gap: no device has this serial, between two that have"
            : `gap: no device has the serials ${name(from)} to ${name(to)} (${gap})`,
        });
        listed++;
      }
    }
    if (listed === MAX_HOLES_LISTED && missing > 0n) {
      out.push({ serial: `${prefix}*`, what: `gap: ${missing} serials missing in this series` });
    }
  }
  return out;
}

/** Every problem of the ledger's rows (by serial; none when all hold). */
export function verifyRows(rows: readonly LedgerRow[]): Problem[] {
  const problems: Problem[] = [];
  const byKey = new Map<string, string>();
  const byRecord = new Map<string, string>();
  for (const row of rows) {
    if (row.provisioned_at === null) {
      problems.push({
        serial: row.serial,
        what:
          `gap: reserved by station ${row.station} at ${row.reserved_at} and never confirmed (its device may be written: provision it again at that station)`,
      });
      continue;
    }
    for (const what of rowProblems(row)) problems.push({ serial: row.serial, what });
    const key = toHex(row.device_public_key!);
    const first = byKey.get(key);
    if (first !== undefined) {
      problems.push({
        serial: row.serial,
        what: `duplicate: serial ${first} has the same device key`,
      });
    } else byKey.set(key, row.serial);
    const rec = toHex(nacl.hash(row.record!));
    const firstRecord = byRecord.get(rec);
    if (firstRecord !== undefined) {
      problems.push({
        serial: row.serial,
        what: `duplicate: serial ${firstRecord} has the same record`,
      });
    } else byRecord.set(rec, row.serial);
  }
  const confirmed = rows.filter((r) => r.provisioned_at !== null).map((r) => r.serial);
  return [...problems, ...holes(confirmed)];
}
