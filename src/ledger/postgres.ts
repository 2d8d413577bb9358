/**
 * The plant's ledger engine: one PostgreSQL database shared by every station
 * (`postgres://user[:password]@host[:port]/db`), over linkd's own client (pg/).
 *
 * Every decision is one statement, so that stations racing for a serial or a device key settle
 * it in the database: INSERT ... ON CONFLICT (serial) DO NOTHING takes a serial once; the UPDATE
 * that confirms a reservation names the station and requires it unconfirmed; the UNIQUE rule on
 * device_public_key refuses a second serial for one device (SQLSTATE 23505).
 */
import { Code, LinkdError } from "../errors.ts";
import { connectPg, type PgClient, PgError, type PgValue } from "./pg/mod.ts";
import { checkRow } from "./rows.ts";
import type { Confirmation, ConfirmRefusal, LedgerRow, LedgerStore, Reservation } from "./store.ts";
import { TABLE } from "./store.ts";

const SCHEMA = `CREATE TABLE IF NOT EXISTS ${TABLE} (
  serial TEXT PRIMARY KEY,
  product_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  station TEXT NOT NULL,
  reserved_at BIGINT NOT NULL,
  device_public_key BYTEA UNIQUE,
  record BYTEA,
  signature BYTEA,
  line_public_key BYTEA,
  provisioned_at BIGINT
)`;

/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = "23505";
/** SQLSTATE of a unique violation while two sessions create the table at once. */
const DUPLICATE_OBJECT = new Set(["23505", "42P07"]);

/** `url` without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/?#@]*):[^@/?#]*@/i, "$1:***@");
}

function unavailable(where: string, what: string, e: unknown): LinkdError {
  const why = e instanceof PgError
    ? `${e.message.slice(0, 200)} (SQLSTATE ${e.code})`
    : e instanceof Error
    ? e.message.slice(0, 200)
    : String(e);
  return new LinkdError(Code.LEDGER_UNAVAILABLE, `Cannot ${what} the ledger ${where}: ${why}`);
}

/** Connects to the PostgreSQL ledger at `url` and makes sure its table is there. */
export async function openPostgresLedger(url: string): Promise<LedgerStore> {
  const where = redactUrl(url);
  let pg: PgClient;
  try {
    pg = await connectPg(url);
  } catch (e) {
    throw unavailable(where, "connect to", e);
  }
  try {
    await pg.query(SCHEMA);
  } catch (e) {
    // Two stations starting at once may both try to create it: the loser finds it made.
    if (!(e instanceof PgError && DUPLICATE_OBJECT.has(e.code))) {
      await pg.close().catch(() => {});
      throw unavailable(where, "set up", e);
    }
  }
  return new PostgresLedger(pg, where);
}

class PostgresLedger implements LedgerStore {
  readonly #pg: PgClient;
  readonly #where: string;

  constructor(pg: PgClient, where: string) {
    this.#pg = pg;
    this.#where = where;
  }

  async #query(what: string, sql: string, params: PgValue[] = []) {
    try {
      return await this.#pg.query(sql, params);
    } catch (e) {
      if (e instanceof PgError && e.code === UNIQUE_VIOLATION) throw e;
      throw unavailable(this.#where, what, e);
    }
  }

  async reserve(r: Reservation): Promise<boolean> {
    const out = await this.#query(
      "write to",
      `INSERT INTO ${TABLE} (serial, product_id, client_id, station, reserved_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (serial) DO NOTHING`,
      [r.serial, r.product_id, r.client_id, r.station, BigInt(r.reserved_at)],
    );
    return out.rowCount === 1;
  }

  async get(serial: string): Promise<LedgerRow | null> {
    const out = await this.#query("read", `SELECT * FROM ${TABLE} WHERE serial = $1`, [serial]);
    const raw = out.rows[0];
    return raw === undefined ? null : checkRow(raw);
  }

  async confirm(serial: string, station: string, c: Confirmation): Promise<true | ConfirmRefusal> {
    try {
      const out = await this.#query(
        "write to",
        `UPDATE ${TABLE} SET device_public_key = $1, record = $2, signature = $3,
           line_public_key = $4, provisioned_at = $5
         WHERE serial = $6 AND station = $7 AND provisioned_at IS NULL`,
        [
          c.device_public_key,
          c.record,
          c.signature,
          c.line_public_key,
          BigInt(c.provisioned_at),
          serial,
          station,
        ],
      );
      return out.rowCount === 1 ? true : "no-reservation";
    } catch (e) {
      if (e instanceof PgError && e.code === UNIQUE_VIOLATION) return "key-taken";
      throw e;
    }
  }

  async replace(serial: string, c: Confirmation): Promise<boolean> {
    const out = await this.#query(
      "write to",
      `UPDATE ${TABLE} SET record = $1, signature = $2, line_public_key = $3, provisioned_at = $4
       WHERE serial = $5 AND device_public_key = $6 AND provisioned_at IS NOT NULL`,
      [
        c.record,
        c.signature,
        c.line_public_key,
        BigInt(c.provisioned_at),
        serial,
        c.device_public_key,
      ],
    );
    return out.rowCount === 1;
  }

  async rows(sinceMs?: number): Promise<LedgerRow[]> {
    const out = sinceMs === undefined
      ? await this.#query("read", `SELECT * FROM ${TABLE} ORDER BY serial`)
      : await this.#query(
        "read",
        `SELECT * FROM ${TABLE} WHERE provisioned_at >= $1 ORDER BY serial`,
        [BigInt(sinceMs)],
      );
    return out.rows.map(checkRow);
  }

  close(): Promise<void> {
    return this.#pg.close().catch(() => {});
  }
}
