/**
 * linkd's bus to the audio pipeline (CONTRACT.md section 4): a small interface, and its
 * implementation on linkd's own MQTT client (./mqtt/). The rest of linkd sees `Bus` and plain
 * objects, never MQTT packets. (Not MQTT.js: on Deno it loads the Node compatibility layer,
 * which cost about 170 ms of every boot and most of the daemon's memory; see mqtt/mod.ts.)
 *
 * - MQTT 5, QoS 1, clean start. The last will is `P/state` = `offline`, retained.
 * - Retained topics (state, pairing, capabilities, segment, display) are remembered and
 *   published again after every reconnect, so a broker that restarted without persistence gets
 *   them back; then `onReconnect` lets the owner publish a fresh state and a valid token.
 * - Reconnection is driven here: delays come from `Backoff` (RECONNECT_TABLE_S with ±50 %
 *   jitter) and are slept on the injected clock. The backoff starts over only after a
 *   connection stayed up for STABLE_MS, so a broker that accepts and drops at once is not
 *   hammered. The client keeps its keepalive, connect timeout and acknowledgement deadlines on
 *   `timers`, real ones by default (a fake clock in tests must not starve the broker of pings;
 *   a test that drives those deadlines passes fake ones).
 * - A broker that stalls is dropped: every SUBACK, PUBACK and PINGRESP has ACK_TIMEOUT_MS.
 *   Past it the client closes the connection (the broker publishes the will, `offline`), the
 *   bus logs one line naming the packet, its identifier and the deadline, and reconnects with
 *   the backoff: subscribes again, replays the retained topics, and `onReconnect` republishes.
 * - Publishing never waits for the broker: each publish is handed to the connection in order
 *   and the promise resolves at once; PUBACKs are awaited apart (pipelined within the broker's
 *   Receive Maximum), so one unacknowledged publish never holds back the next.
 * - Each connection is a new session (clean start), so nothing is resent with DUP after a
 *   reconnect. What must survive it is resent from what the bus and its owner know now: the
 *   retained topics hold their latest value (an older one is never replayed), and the owner
 *   publishes a token that is still valid, with its message expiry counted from now; a token
 *   (or prompt, or reply) that was in flight is never replayed, so never sent stale.
 * - Commands on `P/cmd/+`: bounded, checked (payloads.ts), rate-limited per command name, and
 *   answered on the MQTT 5 response topic with the request's correlation data. Hostile input
 *   is answered with a coded error and never throws out of the bus.
 * - Nothing here logs a payload: no token, no password, ever.
 *
 * Publishing never fails because the broker is away: a retained value is kept for the next
 * connection; a token or prompt published while disconnected is dropped (the owner publishes
 * a valid token again in `onReconnect`). A broker's refusal (PUBACK 0x87) is logged.
 *
 * close() is bounded whatever the broker does: `offline` is published and its PUBACK awaited,
 * then DISCONNECT, all within closeTimeoutMs (5 s); past it the socket is dropped (the will
 * says `offline` just the same).
 */
import {
  type ConnectOptions,
  type IncomingMessage,
  MqttClient,
  MqttError,
  type MqttTimers,
  type PublishOptions,
  type PublishProperties,
  type SubscribeOptions,
} from "./mqtt/mod.ts";
import { Backoff } from "../auth/backoff.ts";
import { encodeCbor } from "../cbor.ts";
import type { Clock } from "../clock.ts";
import type { AccessToken, LinkState, PairingInfo } from "../link/controller.ts";
import type { Capabilities } from "../link/scope_book.ts";
import {
  BusCode,
  capabilitiesPayload,
  type CommandName,
  type CommandOptions,
  type CommandReply,
  type Display,
  displayPayload,
  errorReply,
  isCommandName,
  isTokenReply,
  offlineState,
  pairingPayload,
  parseCommand,
  replyPayload,
  type Say,
  sayPayload,
  type Segment,
  segmentPayload,
  statePayload,
  tokenPayload,
} from "./payloads.ts";
import { prefixProblem } from "./topics.ts";
import { DEFAULT_COMMAND_RATE, type RateLimit, TokenBucket } from "./rate_limit.ts";

export type BusStatus = "connected" | "reconnecting" | "offline";

export type CommandHandler = (
  cmd: CommandName,
  options: CommandOptions,
) => Promise<CommandReply>;

/**
 * The publish methods resolve once the message is handed to the connection (or kept for the
 * next one), in call order; they never wait for the broker's PUBACK and never reject.
 */
export interface Bus {
  /** `P/state`, retained. */
  publishState(s: LinkState): Promise<void>;
  /** `P/pairing`, retained; null clears it with an empty retained payload. */
  publishPairing(p: PairingInfo | null): Promise<void>;
  /** `P/token`: QoS 1, never retained, message expiry = the seconds left (`expires_in`). */
  publishToken(t: AccessToken): Promise<void>;
  /** `P/capabilities`, retained. */
  publishCapabilities(c: Capabilities): Promise<void>;
  /** `P/say`, not retained. */
  publishSay(x: Say): Promise<void>;
  /** `P/segment`, retained while pairing; null clears it. */
  publishSegment(x: Segment | null): Promise<void>;
  /** `P/display`, retained while pairing; null clears it. */
  publishDisplay(x: Display | null): Promise<void>;
  /** Sets the one handler of every `P/cmd/<name>` of COMMANDS (pair, logout, token, refresh). */
  onCommand(handler: CommandHandler): void;
  /**
   * Publishes `finalState` (default `offline`), disconnects cleanly, stops reconnecting; within
   * closeTimeoutMs whatever the broker does.
   */
  close(finalState?: LinkState): Promise<void>;
}

export interface BusOptions {
  /** `mqtt://host:port` (or `mqtts://`). Credentials belong in username/password, not here. */
  url: string;
  username?: string;
  /** Read from `bus.passwordFile` by the caller; never logged. */
  password?: string;
  /** `bus.prefix`: `P` of the topics. */
  prefix: string;
  clock: Clock;
  /** Uniform [0, 1): reconnect jitter and the default client id. */
  random: () => number;
  /** Default `linkd-` and 8 random hex digits. */
  clientId?: string;
  onStatus?: (s: BusStatus) => void;
  /** After each reconnect (not the first connect): the owner republishes state and a token. */
  onReconnect?: () => void;
  /** One line per event; never holds a payload or a secret. */
  log?: (line: string) => void;
  /**
   * 5 (default). 4 (MQTT 3.1.1) only for a broker without MQTT 5, such as the embedded aedes:
   * then there is no message expiry, and commands are served but cannot be answered (no
   * response topic in 3.1.1).
   */
  protocolVersion?: 4 | 5;
  /** Reconnect delays in seconds before jitter (default RECONNECT_TABLE_S). */
  reconnectTableS?: readonly number[];
  /**
   * Per command name (default DEFAULT_COMMAND_RATE). It must stay looser than the contract's
   * one refresh per 30 s: the link controller limits real refreshes itself (a `cmd/refresh`
   * joins the refresh in flight, or is answered `rate_limited`), so under a flood the bus must
   * still let a `cmd/refresh` through at least every 30 s, and it answers all the others.
   */
  commandRate?: RateLimit;
  /** How long a command handler may take before the reply is `timeout` (default 30 s). */
  handlerTimeoutMs?: number;
  /** How long close() waits for the broker to take the final state (default 5 s). */
  closeTimeoutMs?: number;
  /** MQTT keepalive in seconds (default 30). */
  keepaliveS?: number;
  /** How long a SUBACK, PUBACK or PINGRESP may take (default ACK_TIMEOUT_MS). */
  ackTimeoutMs?: number;
  /**
   * The MQTT client's timers (connect timeout, keepalive, acknowledgement deadlines). Default:
   * real ones. Tests that drive the deadlines pass fake ones (`clockTimers` of _testing.ts).
   */
  timers?: MqttTimers;
  /** Abandons waiting for the first connection: connectBus rejects with BusError `aborted`. */
  signal?: AbortSignal;
}

/** Reconnect delays, seconds before ±50 % jitter: a local broker is back within seconds. */
export const RECONNECT_TABLE_S: readonly number[] = [0.25, 0.5, 1, 2, 5, 10, 30];
/** A connection that stayed up this long resets the backoff to the top of the table. */
export const STABLE_MS = 30_000;
/**
 * The deadline of every request that waits for the broker (SUBACK, PUBACK, PINGRESP), from when
 * it went out. The speaker's broker is local and answers in milliseconds; 10 s means it has
 * stalled, with room for a loaded one. With the default 30 s keepalive a dead broker is noticed
 * within 40 s even when nothing is being published.
 */
export const ACK_TIMEOUT_MS = 10_000;
/**
 * The largest packet linkd accepts from the broker (MQTT 5 Maximum Packet Size). The broker
 * drops a bigger command for linkd without delivering it, so it gets no reply; commands over
 * MAX_COMMAND_BYTES and under this get a `too_large` reply.
 */
export const MAX_INCOMING_PACKET = 65_536;

/**
 * CONNACK reason codes that retrying does not cure (3.1.1 and 5): linkd connects the same way
 * each time, so the broker would refuse it the same way for ever. 3.1.1: 1 protocol version,
 * 2 client id, 4 credentials, 5 not authorized. 5: 0x84 protocol version, 0x85 client id,
 * 0x86 credentials, 0x87 not authorized, 0x8A banned, 0x8C authentication method, 0x90 topic
 * name (the will's), 0x95 packet too large, 0x99 payload format, 0x9A retain not supported
 * (the will is retained), 0x9B QoS not supported (the will is QoS 1).
 */
const REFUSALS = new Set([
  1,
  2,
  4,
  5,
  0x84,
  0x85,
  0x86,
  0x87,
  0x8a,
  0x8c,
  0x90,
  0x95,
  0x99,
  0x9a,
  0x9b,
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

/** Connects and resolves once connected and subscribed; retries network failures for ever. */
export async function connectBus(options: BusOptions): Promise<Bus> {
  const bus = new MqttBus(options);
  await bus.started;
  return bus;
}

/** Wildcards and NUL have no place in a topic linkd publishes to. */
function notPlainTopic(t: string): boolean {
  return t.includes("+") || t.includes("#") || t.includes("\0");
}

/** The one prefix rule is topics.ts's (config.ts calls it too); a caller's mistake here. */
function checkPrefix(prefix: string): void {
  const why = typeof prefix === "string" ? prefixProblem(prefix) : "not a string";
  if (why !== null) {
    throw new TypeError(`Bus prefix ${JSON.stringify(prefix)} is not a topic prefix: ${why}`);
  }
}

/** host:port of the URL, for logs: never the credentials a URL may carry. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    throw new TypeError(`Bus URL is not a URL`);
  }
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.message.split("\n")[0]}${code !== undefined ? ` (${String(code)})` : ""}`;
  }
  return "unknown error";
}

type Outcome = "acked" | "refused" | "lost";

/** One network connection: one MqttClient, connected and subscribed, never reconnected. */
class Connection {
  /** Resolves when the connection is gone, whatever the cause. */
  readonly ended: Promise<void>;
  /** Resolves when connected and subscribed; rejects when it ends first. */
  readonly ready: Promise<void>;
  up = false;
  /** Why the connection ended, once it did (null: closed by linkd). */
  why: MqttError | null = null;
  #client: MqttClient | null = null;
  readonly #abort = new AbortController();
  #log: (line: string) => void;

  constructor(
    opts: ConnectOptions,
    commandTopic: string,
    subscription: SubscribeOptions,
    onMessage: (m: IncomingMessage) => void,
    log: (line: string) => void,
  ) {
    this.#log = log;
    let endedResolve!: () => void;
    this.ended = new Promise((r) => (endedResolve = r));
    this.ready = (async () => {
      let client: MqttClient;
      try {
        client = await MqttClient.connect({ ...opts, signal: this.#abort.signal, onMessage });
      } catch (e) {
        endedResolve();
        throw e;
      }
      this.#client = client;
      client.closed.then((why) => {
        this.up = false;
        this.why = why;
        endedResolve();
      });
      let codes: number[];
      try {
        codes = await client.subscribe(commandTopic, subscription);
      } catch (e) {
        // When the connection ended first, why (e.g. no SUBACK in time) says more than "closed
        // before the SUBACK"; any other refusal is its own reason.
        const ended = e instanceof MqttError && e.code === "closed" ? await client.closed : null;
        client.destroy();
        throw ended ?? e;
      }
      if ((codes[0] ?? 0x80) >= 0x80) {
        // Publishing still works: stay connected, without commands.
        log(`the broker refused the subscription to ${commandTopic} (${codes[0]})`);
      }
      if (!client.connected) throw new MqttError("closed", "Connection closed before it was ready");
      this.up = true;
    })();
    this.ready.catch(() => {});
  }

  /** Publishes and waits for PUBACK, a refusal, or the end of the connection. */
  async publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<Outcome> {
    const client = this.#client;
    if (!this.up || !client?.connected) return "lost";
    try {
      const rc = await client.publish(topic, payload, opts);
      if (rc < 0x80) return "acked";
      this.#log(`the broker refused a publish to ${topic} (${rc})`);
      return "refused";
    } catch (e) {
      // e.g. over the broker's maximum packet size; the end of the connection is logged once,
      // by the bus, not once per publish that was waiting
      const closed = e instanceof MqttError && e.code === "closed";
      if (this.up && !closed) this.#log(`cannot publish to ${topic}: ${describeError(e)}`);
      return "lost";
    }
  }

  /** Sends DISCONNECT (normal: no will) and closes, or drops the socket when `force`. */
  async end(force: boolean): Promise<void> {
    this.up = false;
    this.#abort.abort();
    const client = this.#client;
    if (client) {
      if (force) client.destroy();
      else await client.disconnect().catch(() => client.destroy());
    }
    await this.ended;
  }

  /** Drops the socket now, even in the middle of a graceful end. */
  destroy(): void {
    this.up = false;
    this.#abort.abort();
    this.#client?.destroy();
  }
}

class MqttBus implements Bus {
  readonly started: Promise<void>;
  readonly #o: BusOptions;
  readonly #prefix: string;
  readonly #stateTopic: string;
  readonly #clientId: string;
  /** Topic → the last retained payload (empty = cleared), replayed after each reconnect. */
  readonly #retained = new Map<string, Uint8Array>();
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #quiet = new Set<string>();
  readonly #stop = new AbortController();
  #conn: Connection | null = null;
  #handler: CommandHandler | null = null;
  #status: BusStatus | null = null;
  #closing: Promise<void> | null = null;
  #loop: Promise<void> = Promise.resolve();

  constructor(options: BusOptions) {
    checkPrefix(options.prefix);
    where(options.url);
    if (options.protocolVersion !== undefined && ![4, 5].includes(options.protocolVersion)) {
      throw new TypeError("Bus protocolVersion must be 4 or 5");
    }
    this.#o = options;
    this.#prefix = options.prefix;
    this.#stateTopic = `${options.prefix}/state`;
    this.#clientId = options.clientId ??
      `linkd-${
        Array.from({ length: 8 }, () => Math.floor(options.random() * 16).toString(16)).join("")
      }`;
    this.started = new Promise((resolve, reject) => {
      this.#loop = this.#run(resolve, reject);
    });
  }

  get #v5(): boolean {
    return (this.#o.protocolVersion ?? 5) === 5;
  }

  #log(line: string): void {
    try {
      this.#o.log?.(`bus: ${line}`);
    } catch { /* a failing logger must not stop the bus */ }
  }

  #setStatus(s: BusStatus): void {
    if (this.#status === s) return;
    this.#status = s;
    try {
      this.#o.onStatus?.(s);
    } catch (e) {
      this.#log(`onStatus failed: ${describeError(e)}`);
    }
  }

  #clientOptions(): ConnectOptions {
    const will = encodeCbor(statePayload(offlineState(this.#o.clock.now())));
    const o: ConnectOptions = {
      url: this.#o.url,
      protocolVersion: this.#o.protocolVersion ?? 5,
      clientId: this.#clientId,
      cleanStart: true,
      keepaliveS: this.#o.keepaliveS ?? 30,
      connectTimeoutMs: 10_000,
      ackTimeoutMs: this.#o.ackTimeoutMs ?? ACK_TIMEOUT_MS,
      will: { topic: this.#stateTopic, payload: will, qos: 1, retain: true },
      // MQTT 5 tells the broker, which then drops bigger commands for linkd; on 3.1.1 the
      // client enforces it alone (a bigger packet ends the connection).
      maximumPacketSize: MAX_INCOMING_PACKET,
    };
    if (this.#o.username !== undefined) o.username = this.#o.username;
    if (this.#o.password !== undefined) o.password = this.#o.password;
    if (this.#o.timers !== undefined) o.timers = this.#o.timers;
    return o;
  }

  async #run(resolve: () => void, reject: (e: unknown) => void): Promise<void> {
    const { clock } = this.#o;
    const backoff = new Backoff(this.#o.random, this.#o.reconnectTableS ?? RECONNECT_TABLE_S);
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
        const subscription: SubscribeOptions = this.#v5
          ? { qos: 1, retainHandling: 2, noLocal: true }
          : { qos: 1 };
        const conn: Connection = new Connection(
          this.#clientOptions(),
          `${this.#prefix}/cmd/+`,
          subscription,
          (m) => this.#onMessage(conn, m),
          (line) => this.#log(line),
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
          this.#log(`connected to ${where(this.#o.url)} as ${this.#clientId}`);
          this.#setStatus("connected");
          if (first) {
            first = false;
            resolve();
          } else {
            this.#replayRetained(conn);
            try {
              this.#o.onReconnect?.();
            } catch (e) {
              this.#log(`onReconnect failed: ${describeError(e)}`);
            }
          }
          await conn.ended;
          if (signal.aborted) break;
          const why = conn.why === null ? "" : `: ${describeError(conn.why)}`;
          failure = `connection to ${where(this.#o.url)} lost${why}`;
        } catch (e) {
          const rc = e instanceof MqttError && e.code === "refused" ? e.reasonCode : undefined;
          const refused = rc !== undefined && REFUSALS.has(rc);
          if (refused && first) {
            first = false;
            reject(
              new BusError(
                "refused",
                `The broker at ${where(this.#o.url)} refused linkd: ${describeError(e)}`,
                rc,
              ),
            );
            return;
          }
          if (signal.aborted) break;
          failure = `cannot connect to ${where(this.#o.url)}: ${describeError(e)}`;
        }
        this.#conn = null;
        this.#setStatus("reconnecting");
        if (upAt !== null && clock.monotonic() - upAt >= STABLE_MS) backoff.reset();
        const delay = backoff.next();
        // One line per failure, with why (a stalled broker: which acknowledgement, how long).
        this.#log(`${failure}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
        try {
          await clock.sleep(delay, signal);
        } catch {
          break;
        }
      }
    } catch (e) {
      // Nothing above should throw; if it does, the bus stays down rather than crash linkd.
      this.#log(`reconnect loop failed: ${describeError(e)}`);
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

  #publishRetained(topic: string, payload: Uint8Array): Promise<void> {
    if (this.#closing) return Promise.resolve();
    this.#retained.set(topic, payload);
    const conn = this.#conn;
    // Not acknowledged (refused, or the connection ends first): the latest value is replayed
    // on the next connection.
    if (conn?.up) void conn.publish(topic, payload, { qos: 1, retain: true });
    return Promise.resolve();
  }

  #publishTransient(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void> {
    if (this.#closing) return Promise.resolve();
    const conn = this.#conn;
    if (!conn?.up) {
      this.#log(`not connected: ${topic} dropped`);
      return Promise.resolve();
    }
    void conn.publish(topic, payload, opts).then((outcome) => {
      if (outcome === "lost") this.#log(`connection lost: ${topic} may not have been delivered`);
    });
    return Promise.resolve();
  }

  publishState(s: LinkState): Promise<void> {
    return this.#publishRetained(this.#stateTopic, encodeCbor(statePayload(s)));
  }

  publishPairing(p: PairingInfo | null): Promise<void> {
    return this.#publishRetained(
      `${this.#prefix}/pairing`,
      p === null ? new Uint8Array(0) : encodeCbor(pairingPayload(p)),
    );
  }

  publishToken(t: AccessToken): Promise<void> {
    const left = Math.floor(t.expires_in);
    if (!(left > 0)) {
      this.#log("token already expired: not published");
      return Promise.resolve();
    }
    return this.#publishTransient(
      `${this.#prefix}/token`,
      encodeCbor(tokenPayload(t)),
      this.#tokenOptions(left),
    );
  }

  #tokenOptions(left: number): PublishOptions {
    const o: PublishOptions = { qos: 1, retain: false };
    if (this.#v5) o.properties = { messageExpiryInterval: Math.min(left, 0xffffffff) };
    return o;
  }

  publishCapabilities(c: Capabilities): Promise<void> {
    return this.#publishRetained(
      `${this.#prefix}/capabilities`,
      encodeCbor(capabilitiesPayload(c)),
    );
  }

  publishSay(x: Say): Promise<void> {
    return this.#publishTransient(`${this.#prefix}/say`, encodeCbor(sayPayload(x)), {
      qos: 1,
      retain: false,
    });
  }

  publishSegment(x: Segment | null): Promise<void> {
    return this.#publishRetained(
      `${this.#prefix}/segment`,
      x === null ? new Uint8Array(0) : encodeCbor(segmentPayload(x)),
    );
  }

  publishDisplay(x: Display | null): Promise<void> {
    return this.#publishRetained(
      `${this.#prefix}/display`,
      x === null ? new Uint8Array(0) : encodeCbor(displayPayload(x)),
    );
  }

  onCommand(handler: CommandHandler): void {
    this.#handler = handler;
  }

  // ── commands ───────────────────────────────────────────────────────────────────────────────

  #onMessage(conn: Connection, m: IncomingMessage): void {
    this.#command(conn, m).catch((e) => {
      this.#log(`command failed: ${describeError(e)}`);
    });
  }

  /** The reply topic when it is one linkd may answer on: under `P/reply/`, no wildcards. */
  #replyTopic(m: IncomingMessage): string | null {
    const t = m.properties.responseTopic;
    if (t === undefined) return null;
    const base = `${this.#prefix}/reply/`;
    if (
      typeof t !== "string" || !t.startsWith(base) || t.length === base.length ||
      t.length > 256 || notPlainTopic(t)
    ) {
      this.#log(
        `ignoring response topic ${JSON.stringify(String(t).slice(0, 80))}: not under ${base}`,
      );
      return null;
    }
    return t;
  }

  #take(key: string): boolean {
    let b = this.#buckets.get(key);
    if (!b) {
      const clock = this.#o.clock;
      b = new TokenBucket(this.#o.commandRate ?? DEFAULT_COMMAND_RATE, () => clock.monotonic());
      this.#buckets.set(key, b);
    }
    if (b.take()) {
      this.#quiet.delete(key);
      return true;
    }
    if (!this.#quiet.has(key)) {
      this.#quiet.add(key);
      this.#log(`rate limiting ${key} commands (further refusals not logged)`);
    }
    return false;
  }

  async #command(conn: Connection, m: IncomingMessage): Promise<void> {
    if (this.#closing) return;
    const { topic, payload } = m;
    // A retained command is an old one replayed by the broker: never act on it.
    if (m.retain) {
      this.#log(`ignoring a retained message on ${JSON.stringify(topic.slice(0, 80))}`);
      return;
    }
    const base = `${this.#prefix}/cmd/`;
    if (!topic.startsWith(base)) return;
    const name = topic.slice(base.length);
    const replyTo = this.#replyTopic(m);
    const correlation = m.properties.correlationData;
    const reply = (r: CommandReply) => this.#reply(conn, replyTo, correlation, r);

    if (!isCommandName(name)) {
      if (!this.#take("unknown")) {
        return reply(errorReply(BusCode.RATE_LIMITED, "Too many unknown commands"));
      }
      this.#log(`unknown command ${JSON.stringify(name.slice(0, 64))}`);
      return reply(
        errorReply(BusCode.UNKNOWN_COMMAND, `Unknown command ${JSON.stringify(name.slice(0, 64))}`),
      );
    }
    if (!this.#take(name)) {
      return reply(errorReply(BusCode.RATE_LIMITED, `Too many ${name} commands: try again later`));
    }
    const parsed = parseCommand(name, payload);
    if (!parsed.ok) {
      this.#log(`refused cmd/${name}: ${parsed.error.code}`);
      return reply({ ok: false, error: parsed.error });
    }
    const handler = this.#handler;
    if (!handler) {
      return reply(errorReply(BusCode.UNAVAILABLE, "linkd is not serving commands yet"));
    }
    return reply(await this.#runHandler(handler, name, parsed.options));
  }

  async #runHandler(
    handler: CommandHandler,
    name: CommandName,
    options: CommandOptions,
  ): Promise<CommandReply> {
    const timeoutMs = this.#o.handlerTimeoutMs ?? 30_000;
    const stop = new AbortController();
    const timeout = this.#o.clock.sleep(timeoutMs, stop.signal).then(
      () => errorReply(BusCode.TIMEOUT, `Command ${name} took longer than ${timeoutMs} ms`),
      () => null,
    );
    const run = (async () => {
      try {
        return await handler(name, options);
      } catch (e) {
        // The name and code only: a handler's message is not the bus's to print.
        const code = (e as { code?: unknown } | null)?.code;
        const what = e instanceof Error ? e.name : typeof e;
        this.#log(`cmd/${name} handler failed: ${what}${code === undefined ? "" : ` (${code})`}`);
        return errorReply(BusCode.INTERNAL, `Command ${name} failed`);
      }
    })();
    const r = await Promise.race([run, timeout.then((t) => t ?? run)]);
    stop.abort();
    return checkReply(r) ? r : errorReply(BusCode.INTERNAL, `Command ${name} gave no reply`);
  }

  async #reply(
    conn: Connection,
    replyTo: string | null,
    correlation: Uint8Array | undefined,
    r: CommandReply,
  ): Promise<void> {
    if (replyTo === null || !this.#v5) return;
    const opts: PublishOptions = { qos: 1, retain: false };
    const properties: PublishProperties = {};
    if (correlation !== undefined) properties.correlationData = correlation;
    let payload: Uint8Array;
    if (isTokenReply(r)) {
      const left = Math.floor(r.expires_in);
      if (!(left > 0)) {
        payload = encodeCbor(errorReply(BusCode.NO_TOKEN, "The access token has expired"));
      } else {
        properties.messageExpiryInterval = Math.min(left, 0xffffffff);
        payload = encodeCbor(replyPayload(r));
      }
    } else {
      payload = encodeCbor(replyPayload(r));
    }
    opts.properties = properties;
    // Answer on the connection the command came on: after a reconnect the asker resends.
    await conn.publish(replyTo, payload, opts);
  }

  // ── closing ────────────────────────────────────────────────────────────────────────────────

  close(finalState?: LinkState): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      const { clock } = this.#o;
      this.#stop.abort();
      const conn = this.#conn;
      if (conn?.up) {
        const s = finalState ?? offlineState(clock.now());
        const stop = new AbortController();
        const timeoutMs = this.#o.closeTimeoutMs ?? 5_000;
        const deadline = clock.sleep(timeoutMs, stop.signal).then(() => true, () => false);
        const graceful = (async () => {
          await conn.publish(this.#stateTopic, encodeCbor(statePayload(s)), {
            qos: 1,
            retain: true,
          });
          await conn.end(false);
          return false;
        })();
        if (await Promise.race([graceful, deadline])) {
          this.#log("the broker did not take the final state in time: dropping the connection");
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
      this.#log("closed");
    })();
    return this.#closing;
  }
}

/** A handler's answer is one of the two reply shapes; anything else is the handler's bug. */
function checkReply(r: unknown): r is CommandReply {
  if (r === null || typeof r !== "object") return false;
  const o = r as Record<string, unknown>;
  if (typeof o.access_token === "string") return true;
  return typeof o.ok === "boolean";
}
