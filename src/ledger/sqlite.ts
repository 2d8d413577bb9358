/**
 * The embedded ledger engine: one SQLite file (`sqlite:PATH`), for a single station or a
 * bench. Deno's built-in `node:sqlite` (no package), loaded only when a ledger is opened: the
 * daemon never loads it, and the bundle keeps it a dynamic import (scripts/bundle.ts).
 *
 * Several processes on one station may share the file: WAL journal, a busy timeout, and every
 * decision inside one statement (INSERT ... ON CONFLICT DO NOTHING; UPDATE ... WHERE) so that
 * two of them can never both take a serial.
 */
import { Code, LinkdError } from "../errors.ts";
import { checkRow } from "./rows.ts";
import type { Confirmation, ConfirmRefusal, LedgerRow, LedgerStore, Reservation } from "./store.ts";
import { TABLE } from "./store.ts";

/** How long a statement waits for another process's write lock before it fails. */
const BUSY_TIMEOUT_MS = 10_000;

const SCHEMA = `CREATE TABLE IF NOT EXISTS ${TABLE} (
  serial TEXT PRIMARY KEY NOT NULL,
  product_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  station TEXT NOT NULL,
  reserved_at INTEGER NOT NULL,
  device_public_key BLOB UNIQUE,
  record BLOB,
  signature BLOB,
  line_public_key BLOB,
  provisioned_at INTEGER
)`;

interface Statement {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): Record<string, unknown> | undefined;
  all(...params: unknown[]): Record<string, unknown>[];
}
interface Database {
  exec(sql: string): void;
  prepare(sql: string): Statement;
  close(): void;
}

function unavailable(path: string, what: string, e: unknown): LinkdError {
  const why = e instanceof Error ? e.message.split("\n")[0]!.slice(0, 200) : String(e);
  return new LinkdError(
    Code.LEDGER_UNAVAILABLE,
    `Cannot ${what} the ledger sqlite:${path}: ${why}`,
  );
}

/** Opens (creating when missing) the SQLite ledger at `path`. */
export async function openSqliteLedger(path: string): Promise<LedgerStore> {
  let db: Database;
  try {
    const { DatabaseSync } = await import("node:sqlite");
    db = new DatabaseSync(path) as unknown as Database;
  } catch (e) {
    throw unavailable(path, "open", e);
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(SCHEMA);
  } catch (e) {
    db.close();
    throw unavailable(path, "set up", e);
  }
  return new SqliteLedger(db, path);
}

class SqliteLedger implements LedgerStore {
  readonly #db: Database;
  readonly #path: string;
  #closed = false;
  /** Prepared once per connection: a station runs the same few statements for every device. */
  readonly #statements = new Map<string, Statement>();

  constructor(db: Database, path: string) {
    this.#db = db;
    this.#path = path;
  }

  #statement(sql: string): Statement {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #do<T>(what: string, fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable(this.#path, what, "it is closed"));
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e instanceof LinkdError ? e : unavailable(this.#path, what, e));
    }
  }

  reserve(r: Reservation): Promise<boolean> {
    return this.#do("write to", () => {
      const out = this.#statement(
        `INSERT INTO ${TABLE} (serial, product_id, client_id, station, reserved_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
      ).run(r.serial, r.product_id, r.client_id, r.station, r.reserved_at);
      return Number(out.changes) === 1;
    });
  }

  get(serial: string): Promise<LedgerRow | null> {
    return this.#do("read", () => {
      const raw = this.#statement(`SELECT * FROM ${TABLE} WHERE serial = ?`).get(serial);
      return raw === undefined ? null : checkRow(raw);
    });
  }

  confirm(serial: string, station: string, c: Confirmation): Promise<true | ConfirmRefusal> {
    return this.#do("write to", () => {
      try {
        const out = this.#statement(
          `UPDATE ${TABLE} SET device_public_key = ?, record = ?, signature = ?,
             line_public_key = ?, provisioned_at = ?
           WHERE serial = ? AND station = ? AND provisioned_at IS NULL`,
        ).run(
          c.device_public_key,
          c.record,
          c.signature,
          c.line_public_key,
          c.provisioned_at,
          serial,
          station,
        );
        return Number(out.changes) === 1 ? true : "no-reservation";
      } catch (e) {
        // Another serial has this device key: the UNIQUE rule refused the write.
        if (e instanceof Error && /UNIQUE/i.test(e.message)) return "key-taken";
        throw e;
      }
    });
  }

  replace(serial: string, c: Confirmation): Promise<boolean> {
    return this.#do("write to", () => {
      const out = this.#statement(
        `UPDATE ${TABLE} SET record = ?, signature = ?, line_public_key = ?, provisioned_at = ?
         WHERE serial = ? AND device_public_key = ? AND provisioned_at IS NOT NULL`,
      ).run(
        c.record,
        c.signature,
        c.line_public_key,
        c.provisioned_at,
        serial,
        c.device_public_key,
      );
      return Number(out.changes) === 1;
    });
  }

  rows(sinceMs?: number): Promise<LedgerRow[]> {
    return this.#do("read", () => {
      const all = sinceMs === undefined
        ? this.#db.prepare(`SELECT * FROM ${TABLE} ORDER BY serial`).all()
        : this.#db.prepare(
          `SELECT * FROM ${TABLE} WHERE provisioned_at >= ? ORDER BY serial`,
        ).all(sinceMs);
      return all.map(checkRow);
    });
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }
}
