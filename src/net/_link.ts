/**
 * One connection for one request: connects (TCP, then TLS for https), writes, reads, and stops
 * at once when the caller's signal aborts or the connect timer fires: the socket is closed and
 * every pending or later operation fails with that reason. Socket failures become a `TypeError`
 * (as `fetch`'s) whose `cause` is Deno's error, so its text (rustls' "invalid peer certificate:
 * ...") stays visible to the caller.
 */
import { startTimer } from "../timers.ts";

export interface ServerAddress {
  /** `scheme://host[:port]`: the only part of the URL an error message names. */
  readonly origin: string;
  /** Without brackets for IPv6. */
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
}

export class Link {
  readonly origin: string;
  #conn: Deno.Conn | undefined;
  readonly #connecting = new AbortController();
  readonly #signal: AbortSignal | undefined;
  #stopped = false;
  #reason: unknown;
  #closed = false;
  #onStop: ((reason: unknown) => void) | undefined;
  readonly #onAbort = () => this.stop(this.#signal?.reason);

  /** `signal` must not be aborted yet (the caller checks, to reject before any work). */
  constructor(origin: string, signal: AbortSignal | undefined) {
    this.origin = origin;
    this.#signal = signal;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Calls `fn` once if the link stops early (abort or timeout), with the reason. */
  whenStopped(fn: (reason: unknown) => void): void {
    this.#onStop = fn;
  }

  /**
   * Connects, and for https completes the TLS handshake, within `timeoutMs` (a `DOMException`
   * `TimeoutError` after it). TCP first, with a signal, so an abort also cancels a connect in
   * flight (`Deno.connectTls` takes none); then `Deno.startTls` on that socket.
   *
   * Known limit (Deno 2.9): closing a TLS connection whose handshake is still running rejects
   * the handshake at once, but Deno's TLS stream (rustls-tokio-stream) finishes the handshake in
   * a task of its own that keeps the TCP socket open until the server answers or closes.
   */
  async connect(
    to: ServerAddress,
    caCerts: string[] | undefined,
    timeoutMs: number,
  ): Promise<void> {
    const cancel = startTimer(timeoutMs, () => {
      this.stop(
        new DOMException(
          `Connecting to ${this.origin} timed out after ${timeoutMs} ms`,
          "TimeoutError",
        ),
      );
    });
    try {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({
          hostname: to.hostname,
          port: to.port,
          signal: this.#connecting.signal,
        });
      } catch (e) {
        throw this.#failure(e, "connect to");
      }
      this.#conn = conn;
      if (this.#stopped) {
        this.#closeConn();
        throw this.#reason;
      }
      if (!to.tls) return;
      let tls: Deno.TlsConn;
      try {
        tls = await Deno.startTls(conn, {
          hostname: to.hostname,
          ...(caCerts === undefined ? {} : { caCerts }),
        });
      } catch (e) {
        this.#closeConn();
        throw this.#failure(e, "connect to");
      }
      this.#conn = tls;
      if (this.#stopped) {
        this.#closeConn();
        throw this.#reason;
      }
      await this.#io(tls.handshake(), "connect to");
    } finally {
      cancel();
    }
  }

  /** Writes all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    const conn = this.#open();
    for (let off = 0; off < bytes.length;) {
      off += await this.#io(conn.write(bytes.subarray(off)), "send the request to");
    }
  }

  /** Reads into `buf`: the count, or null when the server closed the connection. */
  readonly read = async (buf: Uint8Array): Promise<number | null> =>
    await this.#io(this.#open().read(buf), "read the response from");

  /**
   * Stops the link early: closes the socket, makes every pending and later operation fail with
   * `reason`, and tells `whenStopped`. Does nothing once stopped or closed.
   */
  stop(reason: unknown): void {
    if (this.#stopped || this.#closed) return;
    this.#stopped = true;
    this.#reason = reason;
    this.#connecting.abort(reason);
    this.close();
    this.#onStop?.(reason);
  }

  /** Closes the socket and forgets the caller's signal. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#closeConn();
  }

  #closeConn(): void {
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
  }

  #open(): Deno.Conn {
    if (this.#stopped) throw this.#reason;
    if (this.#closed || this.#conn === undefined) {
      throw new TypeError(`Cannot use the connection to ${this.origin}: it is closed`);
    }
    return this.#conn;
  }

  async #io<T>(op: Promise<T>, action: string): Promise<T> {
    let value: T;
    try {
      value = await op;
    } catch (e) {
      throw this.#failure(e, action);
    }
    if (this.#stopped) throw this.#reason;
    return value;
  }

  #failure(cause: unknown, action: string): unknown {
    if (this.#stopped) return this.#reason;
    return new TypeError(`Cannot ${action} ${this.origin}`, { cause });
  }
}
