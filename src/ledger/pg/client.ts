/**
 * `connectPg`: one connection to a PostgreSQL server and the queries on it. A query without
 * parameters goes as a simple Query; with parameters (even none: `[]`) as Parse, Bind, Describe,
 * Execute, Sync in one write. Queries run one at a time: a second waits for the first's
 * ReadyForQuery. The client reads only while a query runs; a server that closed in between is
 * found by the next query.
 *
 * Nothing hangs: connecting (TCP, TLS, startup, authentication) and each query must finish
 * within `timeoutMs` (the URL's connect_timeout for connecting, when given); when time runs out
 * the socket is closed and the operation fails with PgError "08006", as it does when the server
 * closes or breaks the protocol. A broken or closed client fails every later query at once with
 * "08003". The caller's signal, when it aborts, closes the client ("57014"). A result is bounded
 * in rows and bytes ("54000", the connection stays usable), a message by `maxMessageBytes`.
 */
import { concat } from "../../bytes.ts";
import { invalidArgument, oneLine } from "../../text.ts";
import { startTimer } from "../../timers.ts";
import { authenticate } from "./auth.ts";
import {
  type Column,
  readDataRow,
  readErrorFields,
  readReady,
  readRowDescription,
  readStrings,
} from "./backend.ts";
import {
  CANCELED,
  CANNOT_CONNECT,
  CONNECTION_FAILURE,
  NO_CONNECTION,
  NOT_SUPPORTED,
  PgError,
  serverError,
  TOO_LARGE,
} from "./errors.ts";
import {
  bindMessage,
  copyFailMessage,
  describePortal,
  executeMessage,
  parseMessage,
  queryMessage,
  sslRequest,
  startupMessage,
  syncMessage,
  terminateMessage,
} from "./frontend.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, Framer } from "./framer.ts";
import { readPassfile } from "./passfile.ts";
import { parsePgUrl } from "./url.ts";
import { decodeValue, encodeParam, type PgValue } from "./values.ts";
import { protocolError } from "./backend.ts";

export type { PgValue } from "./values.ts";
export { PgError } from "./errors.ts";

export interface PgResult {
  rows: Record<string, PgValue>[];
  /** The command tag without its counts: "SELECT", "INSERT", "CREATE TABLE". */
  command: string;
  /** The tag's count (rows inserted, updated, selected...), 0 when it has none. */
  rowCount: number;
}

export interface PgClient {
  query(sql: string, params?: PgValue[]): Promise<PgResult>;
  /** Sends Terminate and closes the socket; idempotent. A running query fails with "08003". */
  close(): Promise<void>;
}

export interface ConnectPgOptions {
  /** Aborting closes the client: connecting and queries fail with PgError "57014". */
  signal?: AbortSignal;
  /** Bound on connecting and on each query, in milliseconds: default 30 000. */
  timeoutMs?: number;
  /** Deno.connect, or a stand-in for tests. */
  connect?: typeof Deno.connect;
  /** Bound on one message from the server: default 64 MiB. */
  maxMessageBytes?: number;
  /** Bound on the rows of one result: default 1 000 000. */
  maxRows?: number;
  /** Bound on the value bytes of one result: default 256 MiB. */
  maxResultBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export async function connectPg(url: string, o: ConnectPgOptions = {}): Promise<PgClient> {
  const target = parsePgUrl(url);
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw invalidArgument(`timeoutMs must be positive, got ${timeoutMs}`);
  const where = target.host.includes(":")
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`;
  const password = target.password ??
    (target.passfile === undefined ? undefined : await readPassfile(target.passfile, target));
  const client = new Client(where, password, timeoutMs, o);
  if (o.signal?.aborted) {
    await client.close();
    throw client.aborted();
  }
  try {
    await client.guard(
      target.connectTimeoutS ? target.connectTimeoutS * 1000 : timeoutMs,
      () =>
        client.open(
          async (signal) => {
            let conn: Deno.Conn;
            try {
              conn = await (o.connect ?? Deno.connect)({
                hostname: target.host,
                port: target.port,
                transport: "tcp",
                signal,
              });
            } catch (e) {
              if (signal.aborted) throw signal.reason;
              throw new PgError(
                CANNOT_CONNECT,
                `Cannot connect to the PostgreSQL server ${where}: ${
                  oneLine(String((e as Error)?.message ?? e), 200)
                }`,
                { cause: e },
              );
            }
            if (!target.tls) return conn;
            let caCerts: string[] | undefined;
            if (target.sslrootcert !== undefined) {
              try {
                caCerts = [await Deno.readTextFile(target.sslrootcert)];
              } catch (e) {
                conn.close();
                throw new PgError(
                  CANNOT_CONNECT,
                  `Cannot read sslrootcert ${target.sslrootcert}: ${(e as Error)?.name ?? e}`,
                );
              }
            }
            return { conn: conn as Deno.TcpConn, hostname: target.host, caCerts };
          },
          target.user,
          target.database,
          target.applicationName ?? "linkd",
        ),
    );
  } catch (e) {
    await client.close();
    throw e;
  }
  return client;
}

type Opened = Deno.Conn | { conn: Deno.TcpConn; hostname: string; caCerts: string[] | undefined };

class Client implements PgClient {
  #conn: Deno.Conn | undefined;
  #framer: Framer | undefined;
  /** Why the client cannot be used any more (closed, broken, aborted). */
  #broken: PgError | undefined;
  #closed = false;
  #busy = false;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #connecting = new AbortController();
  readonly #secrets: string[];
  readonly #maxRows: number;
  readonly #maxResultBytes: number;
  readonly #maxMessageBytes: number;

  constructor(
    readonly where: string,
    readonly password: string | undefined,
    readonly timeoutMs: number,
    readonly o: ConnectPgOptions,
  ) {
    this.#secrets = password === undefined ? [] : [password, encodeURIComponent(password)];
    this.#maxRows = o.maxRows ?? 1_000_000;
    this.#maxResultBytes = o.maxResultBytes ?? 256 * 1024 * 1024;
    this.#maxMessageBytes = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    o.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  readonly #onAbort = () => this.#fail(this.aborted());

  aborted(): PgError {
    return new PgError(CANCELED, `Cannot use the PostgreSQL server ${this.where}: aborted`, {
      cause: this.o.signal?.reason,
    });
  }

  /** Closes the socket for good; every pending and later operation fails with `e`. */
  #fail(e: PgError): void {
    if (this.#broken === undefined) this.#broken = e;
    this.#connecting.abort(e);
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#conn = undefined;
  }

  /** Runs `op` within `ms`; on time out the client breaks with "08006". */
  async guard<T>(ms: number, op: () => Promise<T>): Promise<T> {
    const cancel = startTimer(ms, () => {
      this.#fail(
        new PgError(
          CONNECTION_FAILURE,
          `Cannot use the PostgreSQL server ${this.where}: no answer within ${ms} ms`,
        ),
      );
    });
    try {
      return await op();
    } catch (e) {
      const err = this.#broken ?? (e instanceof PgError ? e : undefined);
      if (err === undefined) throw e;
      if (err.code.startsWith("08") || err.code === CANCELED) this.#fail(err);
      throw err;
    } finally {
      cancel();
    }
  }

  #read = async (buf: Uint8Array): Promise<number | null> => {
    if (this.#broken) throw this.#broken;
    try {
      const n = await this.#conn!.read(buf);
      if (this.#broken) throw this.#broken;
      return n;
    } catch (e) {
      throw this.#broken ?? e;
    }
  };

  #write = async (b: Uint8Array): Promise<void> => {
    if (this.#broken || this.#conn === undefined) throw this.#broken ?? this.#gone();
    try {
      for (let off = 0; off < b.length;) off += await this.#conn.write(b.subarray(off));
    } catch (e) {
      throw this.#broken ?? new PgError(
        CONNECTION_FAILURE,
        `Cannot write to the PostgreSQL server ${this.where}: the connection failed`,
        { cause: e },
      );
    }
  };

  #gone(): PgError {
    return new PgError(NO_CONNECTION, `Cannot use the PostgreSQL server ${this.where}: closed`);
  }

  async open(
    connect: (signal: AbortSignal) => Promise<Opened>,
    user: string,
    database: string,
    applicationName: string,
  ): Promise<void> {
    const opened = await connect(this.#connecting.signal);
    if ("read" in opened) {
      this.#conn = opened;
    } else {
      this.#conn = opened.conn;
      await this.#write(sslRequest());
      const one = new Uint8Array(1);
      const n = await this.#read(one);
      if (n !== 1) throw protocolError("the server closed the connection on SSLRequest");
      if (one[0] === 0x4e) {
        throw new PgError(
          NOT_SUPPORTED,
          `Cannot connect to the PostgreSQL server ${this.where}: it refuses TLS; ` +
            "turn ssl on in postgresql.conf, or use sslmode=disable",
        );
      }
      if (one[0] !== 0x53) throw protocolError("the answer to SSLRequest is neither S nor N");
      let tls: Deno.TlsConn;
      try {
        tls = await Deno.startTls(opened.conn, {
          hostname: opened.hostname,
          ...(opened.caCerts ? { caCerts: opened.caCerts } : {}),
        });
        this.#conn = tls;
        await tls.handshake();
      } catch (e) {
        throw this.#broken ?? new PgError(
          CANNOT_CONNECT,
          `Cannot connect to the PostgreSQL server ${this.where}: TLS failed (${
            oneLine(String((e as Error)?.message ?? e), 200)
          })`,
          { cause: e },
        );
      }
    }
    this.#framer = new Framer(this.#read, this.where, this.#maxMessageBytes);
    await this.#write(
      startupMessage({
        user,
        database,
        client_encoding: "UTF8",
        application_name: applicationName,
      }),
    );
    const io = { next: () => this.#framer!.next(), write: this.#write };
    await authenticate(io, user, this.password, this.where);
    await this.#untilReady(`connect to the PostgreSQL server ${this.where}`, null);
  }

  query(sql: string, params?: PgValue[]): Promise<PgResult> {
    const run = this.#queue.then(() => this.#query(sql, params));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #query(sql: string, params: PgValue[] | undefined): Promise<PgResult> {
    if (this.#closed || this.#broken) {
      throw new PgError(
        NO_CONNECTION,
        `Cannot run the query: the connection to ${this.where} is ${
          this.#closed ? "closed" : `broken (${this.#broken!.message})`
        }`,
      );
    }
    if (typeof sql !== "string" || sql.includes("\0")) {
      throw invalidArgument("Cannot run the query: the SQL must be a string without NUL");
    }
    let message: Uint8Array;
    if (params === undefined) {
      message = queryMessage(sql);
    } else {
      if (!Array.isArray(params) || params.length > 65535) {
        throw invalidArgument("Cannot run the query: params must be an array of at most 65535");
      }
      const wire = params.map((p, i) => encodeParam(p, i + 1));
      message = concat(
        parseMessage(sql, wire.map((w) => w.type)),
        bindMessage(wire),
        describePortal(),
        executeMessage(),
        syncMessage(),
      );
    }
    this.#busy = true;
    try {
      return await this.guard(this.timeoutMs, async () => {
        await this.#write(message);
        return await this.#untilReady("run the query", { rows: [], command: "", rowCount: 0 });
      });
    } finally {
      this.#busy = false;
    }
  }

  /** Reads up to ReadyForQuery; the result, or the server's error once it is ready again. */
  async #untilReady<R extends PgResult | null>(action: string, result: R): Promise<R> {
    let columns: Column[] | null = null;
    let error: PgError | undefined;
    let bytes = 0;
    for (;;) {
      const m = await this.#framer!.next();
      switch (m.type) {
        case "Z":
          readReady(m.body);
          if (error) throw error;
          return result;
        case "E": {
          const e = serverError(readErrorFields(m.body), action, this.#secrets);
          if (e.severity === "FATAL" || e.severity === "PANIC") {
            this.#fail(e); // the server closes the connection after it
            throw e;
          }
          error ??= e;
          break;
        }
        case "N":
        case "S":
        case "K":
        case "A":
        case "1":
        case "2":
        case "I":
        case "d":
        case "c":
          break; // notices, settings, notifications, steps done, COPY data we do not keep
        case "G":
          await this.#write(copyFailMessage("linkd does not do COPY FROM STDIN"));
          break;
        case "n":
          if (result === null) throw protocolError("NoData came during startup");
          columns = [];
          break;
        case "T":
          if (result === null) throw protocolError("a row description came during startup");
          columns = readRowDescription(m.body);
          result.rows = [];
          bytes = 0;
          break;
        case "D": {
          if (result === null || columns === null) {
            throw protocolError("a data row came without a row description");
          }
          const values = readDataRow(m.body, columns.length);
          bytes += m.body.length;
          if (result.rows.length >= this.#maxRows || bytes > this.#maxResultBytes) {
            error ??= new PgError(
              TOO_LARGE,
              `Cannot run the query: its result is bigger than ${this.#maxRows} rows or ` +
                `${this.#maxResultBytes} bytes; select fewer rows`,
            );
            break;
          }
          const row: Record<string, PgValue> = {};
          // (Deno has no __proto__ setter: a column of that name stays a column.)
          columns.forEach((c, i) => (row[c.name] = decodeValue(values[i]!, c.type)));
          result.rows.push(row);
          break;
        }
        case "C": {
          if (result === null) throw protocolError("a command tag came during startup");
          const [tag] = readStrings(m.body, "a command tag", 1);
          const words = tag!.split(" ");
          const last = words.at(-1) ?? "";
          const counted = /^[0-9]+$/.test(last);
          while (words.length > 1 && /^[0-9]+$/.test(words.at(-1)!)) words.pop();
          result.command = words.join(" ");
          result.rowCount = counted ? Number(last) : 0;
          if (columns === null) result.rows = []; // a statement without rows ended the batch
          columns = null;
          break;
        }
        default:
          throw protocolError(`message type ${m.type} came out of turn`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#busy && this.#broken === undefined && this.#conn !== undefined) {
      await this.#write(terminateMessage()).catch(() => {});
    }
    this.o.signal?.removeEventListener("abort", this.#onAbort);
    this.#fail(this.#gone());
  }
}
