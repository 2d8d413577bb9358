/**
 * What a ledger engine stores, and the few operations the ledger's rules (ledger.ts) need from
 * it. One row per serial: reserved by a station before the device is written, confirmed with the
 * device's signed record after the device committed. The engines (sqlite.ts, postgres.ts) keep
 * the same table and the same two uniqueness rules: the serial, and the device public key.
 *
 * Times are Unix milliseconds, integers (CONTRACT.md's integer times).
 */

/** One device in the ledger. The confirmed fields are null while the serial is only reserved. */
export interface LedgerRow {
  readonly serial: string;
  readonly product_id: string;
  readonly client_id: string;
  readonly station: string;
  readonly reserved_at: number;
  readonly device_public_key: Uint8Array | null;
  readonly record: Uint8Array | null;
  readonly signature: Uint8Array | null;
  readonly line_public_key: Uint8Array | null;
  readonly provisioned_at: number | null;
}

/** A reservation: the serial, what it is for, and who holds it. */
export interface Reservation {
  readonly serial: string;
  readonly product_id: string;
  readonly client_id: string;
  readonly station: string;
  readonly reserved_at: number;
}

/** What a committed device adds to its reservation. */
export interface Confirmation {
  readonly device_public_key: Uint8Array;
  readonly record: Uint8Array;
  readonly signature: Uint8Array | null;
  readonly line_public_key: Uint8Array | null;
  readonly provisioned_at: number;
}

/** The outcome of a confirmation the store could not make. */
export type ConfirmRefusal = "no-reservation" | "key-taken";

/** A ledger engine. Every method may throw LEDGER_UNAVAILABLE (the engine failed). */
export interface LedgerStore {
  /** Inserts the reservation; false (nothing changed) when the serial has a row already. */
  reserve(r: Reservation): Promise<boolean>;
  /** The row of `serial`, or null. */
  get(serial: string): Promise<LedgerRow | null>;
  /**
   * Confirms the reservation of `serial` held by `station` (still unconfirmed); a refusal when
   * there is none, or when another serial has this device key (nothing changed either way).
   */
  confirm(serial: string, station: string, c: Confirmation): Promise<true | ConfirmRefusal>;
  /**
   * A repaired device's new record (same serial, same device key, signed again, a new
   * provisioned_at): replaces the confirmed row's record when its device key is `c`'s; false
   * (nothing changed) when there is no such row.
   */
  replace(serial: string, c: Confirmation): Promise<boolean>;
  /** Every row, confirmed ones from `sinceMs` on (by provisioned_at) when given, by serial. */
  rows(sinceMs?: number): Promise<LedgerRow[]>;
  close(): Promise<void>;
}

/** The table both engines create (their own column types; the same names and rules). */
export const TABLE = "linkd_devices";

/** Longest station name (it goes in every row and every message). */
export const MAX_STATION_CHARS = 64;

/** A station name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, like a serial. */
export const STATION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
