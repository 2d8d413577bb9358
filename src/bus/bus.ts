/**
 * linkd's bus to the audio pipeline (CONTRACT.md section 4): the `Bus` interface the rest of
 * linkd sees (plain objects in, never MQTT packets), its options, and `connectBus`, which
 * implements it on linkd's own MQTT client (./mqtt/). (Not MQTT.js: on Deno it loads the Node
 * compatibility layer, which cost about 170 ms of every boot and most of the daemon's memory;
 * see mqtt/mod.ts.) The bus in rooms:
 *
 *   bus.ts         the interface; which topic carries what, with which QoS, retain and expiry
 *   session.ts     reconnect loop and backoff, retained replay, publishing, the bounded close
 *   connection.ts  one MQTT connection, connected and subscribed, never reconnected
 *   dispatch.ts    commands: rate limit, reply topics, handler deadline, replies
 *   payloads.ts    the CBOR payloads (their shapes: ../contract.ts) and command checks;
 *                  topics.ts the prefix rule; rate_limit.ts the token bucket; log.ts what a log
 *                  line may say
 *
 * - MQTT 5, QoS 1, clean start. The last will is `P/state` = `offline`, retained.
 * - Retained topics (state, pairing, capabilities, segment, display) are remembered and
 *   published again after every reconnect; then `onReconnect` lets the owner publish a fresh
 *   state and a valid token, its message expiry counted from then (session.ts).
 * - A broker that stalls is dropped: every SUBACK, PUBACK and PINGRESP has ACK_TIMEOUT_MS.
 *   Past it the client closes the connection (the broker publishes the will, `offline`), the
 *   bus logs one line naming the packet, its identifier and the deadline, and reconnects with
 *   the backoff: subscribes again, replays the retained topics, and `onReconnect` republishes.
 *   The client keeps its keepalive, connect timeout and acknowledgement deadlines on `timers`,
 *   real ones by default (a fake clock in tests must not starve the broker of pings; a test
 *   that drives those deadlines passes fake ones).
 * - Commands on `P/cmd/+` are answered on the MQTT 5 response topic with the request's
 *   correlation data (dispatch.ts). Hostile input is answered with a coded error and never
 *   throws out of the bus.
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
import { invalidArgument } from "../text.ts";
import type { ConnectOptions, MqttTimers, PublishOptions } from "./mqtt/mod.ts";
import { encodeCbor } from "../cbor.ts";
import type { Clock } from "../clock.ts";
import type {
  AccessToken,
  Capabilities,
  Display,
  LinkState,
  PairingInfo,
  Say,
  Segment,
} from "../contract.ts";
import {
  capabilitiesPayload,
  displayPayload,
  offlineState,
  pairingPayload,
  sayPayload,
  segmentPayload,
  statePayload,
  tokenPayload,
} from "./payloads.ts";
import { prefixProblem } from "./topics.ts";
import type { RateLimit } from "./rate_limit.ts";
import { type CommandHandler, Dispatcher } from "./dispatch.ts";
import { where } from "./log.ts";
import { type BusStatus, Session } from "./session.ts";

export { type CommandHandler, HANDLER_TIMEOUT_MS } from "./dispatch.ts";
export {
  BusError,
  type BusErrorCode,
  type BusStatus,
  CLOSE_TIMEOUT_MS,
  LOGIN_REFUSALS,
  RECONNECT_TABLE_S,
  STABLE_MS,
} from "./session.ts";

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
   * real ones. Tests that drive the deadlines pass fake ones (`clockTimers` of
   * test/support/bus.ts).
   */
  timers?: MqttTimers;
  /** Abandons waiting for the first connection: connectBus rejects with BusError `aborted`. */
  signal?: AbortSignal;
}

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

/** Connects and resolves once connected and subscribed; retries network failures for ever. */
export async function connectBus(options: BusOptions): Promise<Bus> {
  const bus = new MqttBus(options);
  await bus.started;
  return bus;
}

/** The one prefix rule is topics.ts's (config.ts calls it too); a caller's mistake here. */
function checkPrefix(prefix: string): void {
  const why = typeof prefix === "string" ? prefixProblem(prefix) : "not a string";
  if (why !== null) {
    throw invalidArgument(`Bus prefix ${JSON.stringify(prefix)} is not a topic prefix: ${why}`);
  }
}

/** The Bus on a Session (connections, publishing) and a Dispatcher (commands). */
class MqttBus implements Bus {
  readonly started: Promise<void>;
  readonly #o: BusOptions;
  readonly #prefix: string;
  readonly #stateTopic: string;
  readonly #clientId: string;
  readonly #session: Session;
  readonly #dispatcher: Dispatcher;

  constructor(options: BusOptions) {
    checkPrefix(options.prefix);
    where(options.url);
    if (options.protocolVersion !== undefined && ![4, 5].includes(options.protocolVersion)) {
      throw invalidArgument("Bus protocolVersion must be 4 or 5");
    }
    this.#o = options;
    this.#prefix = options.prefix;
    this.#stateTopic = `${options.prefix}/state`;
    this.#clientId = options.clientId ??
      `linkd-${
        Array.from({ length: 8 }, () => Math.floor(options.random() * 16).toString(16)).join("")
      }`;
    const log = (line: string) => this.#log(line);
    // Each takes the options it knows by the same names (prefix, clock, commandRate...), and
    // the logger that never throws.
    this.#dispatcher = new Dispatcher({ ...options, replies: this.#v5, log });
    this.#session = new Session({
      ...options,
      connectOptions: () => this.#clientOptions(),
      where: where(options.url),
      commandFilter: `${this.#prefix}/cmd/+`,
      subscription: this.#v5 ? { qos: 1, retainHandling: 2, noLocal: true } : { qos: 1 },
      onMessage: (m, conn) => void this.#dispatcher.receive(m, conn),
      log,
    });
    this.started = this.#session.started;
  }

  get #v5(): boolean {
    return (this.#o.protocolVersion ?? 5) === 5;
  }

  #log(line: string): void {
    try {
      this.#o.log?.(`bus: ${line}`);
    } catch { /* a failing logger must not stop the bus */ }
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

  // ── what each topic carries ────────────────────────────────────────────────────────────────

  publishState(s: LinkState): Promise<void> {
    return this.#session.publishRetained(this.#stateTopic, encodeCbor(statePayload(s)));
  }

  publishPairing(p: PairingInfo | null): Promise<void> {
    return this.#session.publishRetained(
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
    return this.#session.publishTransient(
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
    return this.#session.publishRetained(
      `${this.#prefix}/capabilities`,
      encodeCbor(capabilitiesPayload(c)),
    );
  }

  publishSay(x: Say): Promise<void> {
    return this.#session.publishTransient(`${this.#prefix}/say`, encodeCbor(sayPayload(x)), {
      qos: 1,
      retain: false,
    });
  }

  publishSegment(x: Segment | null): Promise<void> {
    return this.#session.publishRetained(
      `${this.#prefix}/segment`,
      x === null ? new Uint8Array(0) : encodeCbor(segmentPayload(x)),
    );
  }

  publishDisplay(x: Display | null): Promise<void> {
    return this.#session.publishRetained(
      `${this.#prefix}/display`,
      x === null ? new Uint8Array(0) : encodeCbor(displayPayload(x)),
    );
  }

  onCommand(handler: CommandHandler): void {
    this.#dispatcher.handler = handler;
  }

  close(finalState?: LinkState): Promise<void> {
    return this.#session.close(
      this.#stateTopic,
      () => encodeCbor(statePayload(finalState ?? offlineState(this.#o.clock.now()))),
    );
  }
}
