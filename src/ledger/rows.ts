/**
 * A ledger row as an engine hands it back, checked field by field: a ledger is a shared
 * database that people and other tools can write, so what comes out of it is input like any
 * other. A row that does not have the shape of a LedgerRow is LEDGER_DATA, naming the serial
 * and the field.
 */
import { Code, LinkdError } from "../errors.ts";
import type { LedgerRow } from "./store.ts";

/** Largest record or key the ledger hands back (an identity record is a few hundred bytes). */
export const MAX_FIELD_BYTES = 4096;

function bad(serial: unknown, field: string): LinkdError {
  const which = typeof serial === "string"
    ? `serial ${JSON.stringify(serial.slice(0, 64))}`
    : "a row";
  return new LinkdError(
    Code.LEDGER_DATA,
    `Cannot read the plant's ledger: ${which} has a malformed ${field}; run linkd ledger verify`,
  );
}

/** `raw` (a row of column name to value) as a LedgerRow, or LEDGER_DATA. */
export function checkRow(raw: Record<string, unknown>): LedgerRow {
  const serial = raw.serial;
  const text = (k: string): string => {
    const v = raw[k];
    if (typeof v !== "string" || v.length < 1 || v.length > 256) throw bad(serial, k);
    return v;
  };
  const time = (k: string, nullable: boolean): number | null => {
    const v = raw[k];
    if (v === null && nullable) return null;
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw bad(serial, k);
    return n;
  };
  const bytes = (k: string, size?: number): Uint8Array | null => {
    const v = raw[k];
    if (v === null || v === undefined) return null;
    if (!(v instanceof Uint8Array) || v.length > MAX_FIELD_BYTES) throw bad(serial, k);
    if (size !== undefined && v.length !== size) throw bad(serial, k);
    return v.slice();
  };
  const row: LedgerRow = {
    serial: text("serial"),
    product_id: text("product_id"),
    client_id: text("client_id"),
    station: text("station"),
    reserved_at: time("reserved_at", false)!,
    device_public_key: bytes("device_public_key", 32),
    record: bytes("record"),
    signature: bytes("signature", 64),
    line_public_key: bytes("line_public_key", 32),
    provisioned_at: time("provisioned_at", true),
  };
  const confirmed = row.provisioned_at !== null;
  if (confirmed !== (row.device_public_key !== null) || confirmed !== (row.record !== null)) {
    throw bad(serial, "confirmation (some confirmed fields are set, others not)");
  }
  if ((row.signature === null) !== (row.line_public_key === null)) {
    throw bad(serial, "signature (a signature without its line key, or the reverse)");
  }
  return row;
}
