/**
 * The plant's ledger: the rules every station follows, over any engine (store.ts).
 *
 * One device per serial, one serial per device, across the plant:
 * - `reserve` before anything is written to the device: a serial with a row already is refused
 *   (LEDGER_TAKEN, exit 73, the device untouched) unless it is this station's own unconfirmed
 *   reservation for the same product and client id: then the station resumes it (a station that
 *   died between reserving and confirming, or a device whose provisioning was cut short);
 * - `confirm` after the device committed: the reservation gets the device's public key, its
 *   signed record and signature. A device key already under another serial is refused (the
 *   engine's uniqueness rule); confirming the same record again is a no-op;
 * - `recover` when the device already holds the identity the station asks for (it committed,
 *   then the station died before confirming): the reservation is confirmed from the device's
 *   own record, so nothing is lost;
 * - `checkRepair` before a rework station repairs a device (same serial, same device key) and
 *   `repaired` after: the ledger's record becomes the new one; a ledger that has the serial on
 *   another device key refuses the repair (LEDGER_TAKEN) before the device is touched.
 *
 * Messages name serials and stations, never the ledger's password (the engines redact URLs).
 */
import { timingSafeEqual, toHex } from "../bytes.ts";
import { Code, LinkdError } from "../errors.ts";
import { isoTime } from "../text.ts";
import type { SignedIdentity } from "../records/identity.ts";
import type { Confirmation, LedgerRow, LedgerStore, Reservation } from "./store.ts";
import { STATION_PATTERN } from "./store.ts";

/** Checks a station name (the command line's `--station`). */
export function checkStation(station: string): void {
  if (!STATION_PATTERN.test(station)) {
    throw new LinkdError(
      Code.USAGE,
      `Cannot use station name ${
        JSON.stringify(station.slice(0, 80))
      }: expected 1 to 64 characters of A-Z a-z 0-9 . _ -`,
    );
  }
}

function confirmationOf(s: SignedIdentity): Confirmation {
  return {
    device_public_key: s.identity.device_public_key,
    record: s.record,
    signature: s.signature ?? null,
    line_public_key: s.line_public_key ?? null,
    provisioned_at: s.identity.provisioned_at,
  };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when `row` is confirmed with exactly `c`. */
function confirmedAs(row: LedgerRow, c: Confirmation): boolean {
  return row.provisioned_at === c.provisioned_at &&
    sameBytes(row.device_public_key, c.device_public_key) && sameBytes(row.record, c.record) &&
    sameBytes(row.signature, c.signature) && sameBytes(row.line_public_key, c.line_public_key);
}

export class Ledger {
  readonly #store: LedgerStore;

  constructor(store: LedgerStore) {
    this.#store = store;
  }

  /**
   * Reserves `r.serial` for `r.station`: "new", or "resumed" (this station's own unconfirmed
   * reservation for the same product and client id). Else LEDGER_TAKEN.
   */
  async reserve(r: Reservation): Promise<"new" | "resumed"> {
    checkStation(r.station);
    if (await this.#store.reserve(r)) return "new";
    const row = await this.#store.get(r.serial);
    if (row === null) {
      throw new LinkdError(
        Code.LEDGER_UNAVAILABLE,
        `Cannot reserve serial ${r.serial} in the plant's ledger: it refused the serial and then had no row for it; try again`,
      );
    }
    const untouched = "nothing was written to this device";
    if (row.provisioned_at !== null) {
      throw new LinkdError(
        Code.LEDGER_TAKEN,
        `Cannot provision serial ${r.serial}: the plant's ledger has it on the device provisioned at station ${row.station} at ${
          isoTime(row.provisioned_at)
        }; ${untouched}`,
      );
    }
    if (row.station !== r.station) {
      throw new LinkdError(
        Code.LEDGER_TAKEN,
        `Cannot provision serial ${r.serial}: station ${row.station} reserved it at ${
          isoTime(row.reserved_at)
        } and has not confirmed it; provision it there, or use another serial; ${untouched}`,
      );
    }
    if (row.product_id !== r.product_id || row.client_id !== r.client_id) {
      throw new LinkdError(
        Code.LEDGER_TAKEN,
        `Cannot provision serial ${r.serial}: this station reserved it for product ${row.product_id} and client ${row.client_id}; ${untouched}`,
      );
    }
    return "resumed";
  }

  /**
   * Confirms the reservation of the serial in `signed` for `station` with the device's signed
   * record. Confirming the same record twice is a no-op. LEDGER_TAKEN when another serial has
   * the device key; LEDGER_DATA when the serial has no reservation of this station's or was
   * confirmed with another record.
   */
  async confirm(station: string, signed: SignedIdentity): Promise<void> {
    const serial = signed.identity.serial;
    const c = confirmationOf(signed);
    const done = await this.#store.confirm(serial, station, c);
    if (done === true) return;
    const key = toHex(c.device_public_key).slice(0, 16);
    if (done === "key-taken") {
      throw new LinkdError(
        Code.LEDGER_TAKEN,
        `Cannot record serial ${serial} in the plant's ledger: its device key ${key}… is already recorded under another serial; the device was written: take it out of the line and report it`,
      );
    }
    const row = await this.#store.get(serial);
    if (row !== null && row.provisioned_at !== null && confirmedAs(row, c)) return;
    throw new LinkdError(
      Code.LEDGER_DATA,
      row === null
        ? `Cannot record serial ${serial} in the plant's ledger: it has no reservation for it; the device was written: run linkd ledger verify`
        : row.provisioned_at !== null
        ? `Cannot record serial ${serial} in the plant's ledger: it holds another record for it (device key ${
          toHex(row.device_public_key ?? new Uint8Array()).slice(0, 16)
        }…); the device was written: run linkd ledger verify`
        : `Cannot record serial ${serial} in the plant's ledger: station ${row.station} holds its reservation; the device was written: run linkd ledger verify`,
    );
  }

  /**
   * After a station died between the device's commit and its confirmation: `signed` is what the
   * device holds. Confirms this station's open reservation of that serial from it ("confirmed"),
   * or finds it confirmed already ("recorded"). When the ledger has no row at all for the serial
   * (the station's reservation was lost: a ledger restored from an older backup, a station's
   * SQLite file lost with its disk), the device's record is recorded as this station's
   * ("confirmed"): the device exists, nothing may forget it. Null when the serial is another
   * station's or another device's (nothing to recover here; verify reports it).
   */
  async recover(station: string, signed: SignedIdentity): Promise<"confirmed" | "recorded" | null> {
    const id = signed.identity;
    const row = await this.#store.get(id.serial);
    if (row === null) {
      await this.#store.reserve({
        serial: id.serial,
        product_id: id.product_id,
        client_id: id.client_id,
        station,
        reserved_at: id.provisioned_at,
      });
      await this.confirm(station, signed);
      return "confirmed";
    }
    if (row.provisioned_at !== null) {
      return confirmedAs(row, confirmationOf(signed)) ? "recorded" : null;
    }
    if (row.station !== station) return null;
    await this.confirm(station, signed);
    return "confirmed";
  }

  /**
   * Before a repair of `serial` on the device whose key is `devicePublicKey`: LEDGER_TAKEN when
   * the ledger has the serial on another device or reserved by another station's open run.
   */
  async checkRepair(serial: string, devicePublicKey: Uint8Array): Promise<void> {
    const row = await this.#store.get(serial);
    if (row === null) return; // recorded by repaired()
    if (row.provisioned_at === null || !sameBytes(row.device_public_key, devicePublicKey)) {
      throw new LinkdError(
        Code.LEDGER_TAKEN,
        row.provisioned_at === null
          ? `Cannot repair serial ${serial}: station ${row.station} holds an open reservation of it in the plant's ledger; nothing was written to this device`
          : `Cannot repair serial ${serial}: the plant's ledger has it on another device (key ${
            toHex(row.device_public_key ?? new Uint8Array()).slice(0, 16)
          }…); nothing was written to this device`,
      );
    }
  }

  /**
   * After a repair: the serial's row gets the device's new record (same device key). A serial
   * the ledger had no row for is recorded as `station`'s.
   */
  async repaired(station: string, signed: SignedIdentity): Promise<void> {
    const c = confirmationOf(signed);
    if (await this.#store.replace(signed.identity.serial, c)) return;
    if (await this.recover(station, signed) !== null) return;
    throw new LinkdError(
      Code.LEDGER_DATA,
      `Cannot record the repair of serial ${signed.identity.serial} in the plant's ledger: it holds another device for it; the device was repaired: run linkd ledger verify`,
    );
  }

  /** Every row (confirmed ones from `sinceMs` on), by serial. */
  rows(sinceMs?: number): Promise<LedgerRow[]> {
    return this.#store.rows(sinceMs);
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
