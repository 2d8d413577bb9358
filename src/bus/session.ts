/**
 * Keeps the bus connected, and publishes on whatever connection is up: the reconnect loop, its
 * backoff, the retained topics replayed after each reconnect, publishing, and the bounded
 * close. It knows topics and bytes only; bus.ts says which topic carries what.
 *
 * - Reconnection: delays come from `Backoff` (RECONNECT_TABLE_S with ±50 % jitter) and are
 *   slept on the injected clock. The backoff starts over only after a connection stayed up for
 *   STABLE_MS, so a broker that accepts and drops at once is not hammered. A broker that stalls
 *   is dropped by the client (ACK_TIMEOUT_MS); the session logs one line with why (which
 *   packet, its identifier, the deadline) and reconnects like after any other loss.
 * - A refusal retrying cannot cure (REFUSALS) fails the first connection with BusError
 *   `refused`; giving up through the caller's signal, with `aborted`. Anything else is retried
 *   for ever.
 * - Retained topics remember their latest value (an empty payload clears) and are published
 *   again on each new connection, so a broker that restarted without persistence gets them
 *   back; then `onReconnect` lets the owner publish a fresh state and a valid token.
 * - Publishing never waits for the broker: each publish is handed to the connection in order
 *   and the promise resolves at once; PUBACKs are awaited apart (pipelined within the broker's
 *   Receive Maximum), so one unacknowledged publish never holds back the next.
 * - Each connection is a new session (clean start), so nothing is resent with DUP after a
 *   reconnect: a transient publish (token, prompt, reply) made while disconnected is dropped,
 *   and one in flight is never replayed, so never sent stale.
 * - close() is bounded whatever the broker does: the final state is published and its PUBACK
 *   awaited, then DISCONNECT, all within closeTimeoutMs; past it the socket is dropped (the will
 *   says `offline` just the same).
 */
import { Backoff } from "../auth/backoff.ts";
import type { Clock } from "../clock.ts";
import {
  type ConnectOptions,
  type IncomingMessage,
  MqttError,
  type PublishOptions,
  type SubscribeOptions,
} from "./mqtt/mod.ts";
import { Connection, type Outcome } from "./connection.ts";
import { describeError } from "./log.ts";

export type BusStatus = "connected" | "reconnecting" | "offline";

/** Reconnect delays, seconds before ±50 % jitter: a local broker is back within seconds. */
export const RECONNECT_TABLE_S: readonly number[] = [0.25, 0.5, 1, 2, 5, 10, 30];
/** A connection that stayed up this long resets the backoff to the top of the table. */
export const STABLE_MS = 30_000;
/** How long close() waits for the broker to take the final state. */
export const CLOSE_TIMEOUT_MS = 5_000;

/**
 * CONNACK reason codes that retrying does not cure (3.1.1 and 5): linkd connects the same way
 * each time, so the broker would refuse it the same way for ever. 3.1.1: 1 protocol version,
 * 2 client id, 4 credentials, 5 not authorized. 5: 0x84 protocol version, 0x85 client id,
 * 0x86 credentials, 0x87 not authorized, 0x8A banned, 0x8C authentication method, 0x90 topic
 * name (the will's), 0x95 packet too large, 0x99 payload format, 0x9A retain not supported
 * (the will is retained), 0x9B QoS not supported (the will is QoS 1).
 */
// deno-fmt-ignore
const REFUSALS = new Set([
  1, 2, 4, 5,
  0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c, 0x90, 0x95, 0x99, 0x9a, 0x9b,
]);

/** Refusals about who linkd is (its login), not how it connects. */
export const LOGIN_REFUSALS: ReadonlySet<number> = new Set([4, 5, 0x86, 0x87, 0x8a, 0x8c]);

export type BusErrorCode = "refused" | "aborted";

/** connectBus's failures: the broker refused the login or protocol, or the caller gave up. */
export class BusError extends Error {
  readonly code: BusErrorCode;
  /** The CONNACK reason code of a refusal. */
  readonly reasonCode: number | undefined;
  constructor(code: BusErrorCode, message: string, reasonCode?: number) {
    super(message);
    this.name = "BusError";
    this.code = code;
    this.reasonCode = reasonCode;
  }
}

export interface SessionOptions {
  /** The client's options, made again for each connection (the will carries the time). */
  connectOptions: () => ConnectOptions;
  /** The broker's address for logs (log.ts's `where`). */
  where: string;
  /** Subscribed on each connection: `P/cmd/+`. */
  commandFilter: string;
  subscription: SubscribeOptions;
  /** Each message of the subscription, with the connection it came on (replies go there). */
  onMessage: (m: IncomingMessage, conn: Connection) => void;
  clock: Clock;
  /** Uniform [0, 1): the backoff's jitter. */
  random: () => number;
  /** Reconnect delays in seconds before jitter (default RECONNECT_TABLE_S). */
  reconnectTableS?: readonly number[] | undefined;
  /** Default CLOSE_TIMEOUT_MS. */
  closeTimeoutMs?: number | undefined;
  /** Abandons waiting for the first connection: `started` rejects with BusError `aborted`. */
  signal?: AbortSignal | undefined;
  onStatus?: ((s: BusStatus) => void) | undefined;
  /** After each reconnect (not the first connect). */
  onReconnect?: (() => void) | undefined;
  /** Never throws (the bus's logger swallows its own failures). */
  log: (line: string) => void;
}

export class Session {
  /** Resolves once first connected and subscribed; rejects with BusError (or a bug). */
  readonly started: Promise<void>;
  readonly #o: SessionOptions;
  /** Topic → the last retained payload (empty = cleared), replayed after each reconnect. */
  readonly #retained = new Map<string, Uint8Array>();
  readonly #stop = new AbortController();
  #conn: Connection | null = null;
  #status: BusStatus | null = null;
  #closing: Promise<void> | null = null;
  #loop: Promise<void> = Promise.resolve();

  constructor(options: SessionOptions) {
    this.#o = options;
    // Made here, not in the loop: a bad table is the caller's mistake, thrown by connectBus,
    // never a loop that dies before it settles `started`.
    const backoff = new Backoff(options.random, options.reconnectTableS ?? RECONNECT_TABLE_S);
    this.started = new Promise((resolve, reject) => {
      this.#loop = this.#run(backoff, resolve, reject);
    });
  }

  #setStatus(s: BusStatus): void {
    if (this.#status === s) return;
    this.#status = s;
    try {
      this.#o.onStatus?.(s);
    } catch (e) {
      this.#o.log(`onStatus failed: ${describeError(e)}`);
    }
  }

  async #run(
    backoff: Backoff,
    resolve: () => void,
    reject: (e: unknown) => void,
  ): Promise<void> {
    const { clock, where } = this.#o;
    const log = this.#o.log;
    const signal = this.#stop.signal;
    const outer = this.#o.signal;
    const onOuterAbort = () => {
      if (first) {
        reject(new BusError("aborted", "Stopped waiting for the bus to connect"));
        this.#stop.abort();
        this.#conn?.destroy(); // e.g. one still waiting for its SUBACK
      }
    };
    let first = true;
    outer?.addEventListener("abort", onOuterAbort, { once: true });
    if (outer?.aborted) onOuterAbort();
    try {
      while (!signal.aborted) {
        const opts = this.#o.connectOptions();
        const conn: Connection = new Connection(
          opts,
          this.#o.commandFilter,
          this.#o.subscription,
          (m) => {
            if (this.#closing === null) this.#o.onMessage(m, conn);
          },
          log,
        );
        this.#conn = conn;
        let upAt: number | null = null;
        let failure: string;
        try {
          await conn.ready;
          if (signal.aborted) {
            await conn.end(true);
            break;
          }
          upAt = clock.monotonic();
          log(`connected to ${where} as ${opts.clientId}`);
          this.#setStatus("connected");
          if (first) {
            first = false;
            resolve();
          } else {
            this.#replayRetained(conn);
            try {
              this.#o.onReconnect?.();
            } catch (e) {
              log(`onReconnect failed: ${describeError(e)}`);
            }
          }
          await conn.ended;
          if (signal.aborted) break;
          const why = conn.why === null ? "" : `: ${describeError(conn.why)}`;
          failure = `connection to ${where} lost${why}`;
        } catch (e) {
          const rc = e instanceof MqttError && e.code === "refused" ? e.reasonCode : undefined;
          const refused = rc !== undefined && REFUSALS.has(rc);
          if (refused && first) {
            first = false;
            reject(
              new BusError(
                "refused",
                `The broker at ${where} refused linkd: ${describeError(e)}`,
                rc,
              ),
            );
            return;
          }
          if (signal.aborted) break;
          failure = `cannot connect to ${where}: ${describeError(e)}`;
        }
        this.#conn = null;
        this.#setStatus("reconnecting");
        if (upAt !== null && clock.monotonic() - upAt >= STABLE_MS) backoff.reset();
        const delay = backoff.next();
        // One line per failure, with why (a stalled broker: which acknowledgement, how long).
        log(`${failure}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
        try {
          await clock.sleep(delay, signal);
        } catch {
          break;
        }
      }
    } catch (e) {
      // Nothing above should throw; if it does, the bus stays down rather than crash linkd.
      log(`reconnect loop failed: ${describeError(e)}`);
      if (first) reject(e);
    } finally {
      outer?.removeEventListener("abort", onOuterAbort);
    }
  }

  /** The latest value of each retained topic, handed over in order (PUBACKs awaited apart). */
  #replayRetained(conn: Connection): void {
    for (const [topic, payload] of this.#retained) {
      void conn.publish(topic, payload, { qos: 1, retain: true });
    }
  }

  // ── publishing ─────────────────────────────────────────────────────────────────────────────
  // Each publish is handed to the connection and the promise resolves at once: the client
  // writes them in order, so the owner's order holds without waiting for the broker, and a
  // PUBACK that never comes holds back nothing (its deadline drops the connection instead).

  /** QoS 1, retained; kept for the next connection when not acknowledged on this one. */
  publishRetained(topic: string, payload: Uint8Array): Promise<void> {
    if (this.#closing) return Promise.resolve();
    this.#retained.set(topic, payload);
    const conn = this.#conn;
    // Not acknowledged (refused, or the connection ends first): the latest value is replayed
    // on the next connection.
    if (conn?.up) void conn.publish(topic, payload, { qos: 1, retain: true });
    return Promise.resolve();
  }

  /** Published on the connection that is up, or dropped (logged) when none is. */
  publishTransient(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void> {
    if (this.#closing) return Promise.resolve();
    const conn = this.#conn;
    if (!conn?.up) {
      this.#o.log(`not connected: ${topic} dropped`);
      return Promise.resolve();
    }
    void conn.publish(topic, payload, opts).then((outcome: Outcome) => {
      if (outcome === "lost") this.#o.log(`connection lost: ${topic} may not have been delivered`);
    });
    return Promise.resolve();
  }

  // ── closing ────────────────────────────────────────────────────────────────────────────────

  /**
   * Publishes `finalPayload()` retained on `topic`, disconnects cleanly and stops reconnecting,
   * within closeTimeoutMs whatever the broker does. Idempotent: a second call returns the first.
   */
  close(topic: string, finalPayload: () => Uint8Array): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      const { clock } = this.#o;
      this.#stop.abort();
      const conn = this.#conn;
      if (conn?.up) {
        const stop = new AbortController();
        const timeoutMs = this.#o.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
        const deadline = clock.sleep(timeoutMs, stop.signal).then(() => true, () => false);
        const graceful = (async () => {
          await conn.publish(topic, finalPayload(), { qos: 1, retain: true });
          await conn.end(false);
          return false;
        })();
        if (await Promise.race([graceful, deadline])) {
          this.#o.log(
            "the broker did not take the final state in time: dropping the connection",
          );
          conn.destroy();
          await conn.ended;
        }
        stop.abort();
      } else if (conn) {
        await conn.end(true);
      }
      await this.#loop;
      this.#conn = null;
      this.#setStatus("offline");
      this.#o.log("closed");
    })();
    return this.#closing;
  }
}
