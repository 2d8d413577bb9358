/**
 * One MQTT session over one transport: CONNECT/CONNACK, publish (QoS 0 and 1), subscribe,
 * incoming messages, keepalive, and the end of the connection. No reconnection: the owner
 * watches `closed` and connects again.
 *
 * The broker is not trusted. Every packet is bounded (`maximumPacketSize`) and checked;
 * a protocol violation ends the connection (MQTT 5: after a DISCONNECT with its reason code)
 * and `closed` reports it. Nothing thrown while reading escapes: `onMessage` errors go to
 * `onHandlerError`. Writes go out one after the other, each whole.
 *
 * Outgoing QoS 1 publishes respect the broker's Receive Maximum (the rest wait in order), its
 * Maximum QoS (QoS 1 becomes 0), Maximum Packet Size (`too_large`, nothing sent) and Retain
 * Available (`unsupported`). They are pipelined: a publish waiting for its PUBACK never holds
 * back the next one while the Receive Maximum (default 65535) leaves room.
 *
 * Every request that waits for an answer has a deadline, `ackTimeoutMs` from when it went out
 * (default 10 s): a SUBSCRIBE its SUBACK, a QoS 1 PUBLISH its PUBACK, a PINGREQ its PINGRESP
 * (or any packet; at most one keepalive period). Past it the broker has stalled: the connection
 * is closed without DISCONNECT (the broker publishes the will) and `closed` reports `timeout`
 * with a message naming the packet, its identifier and the deadline. The owner reconnects.
 * (This client never sends UNSUBSCRIBE, so it never waits for an UNSUBACK.)
 *
 * States and transitions. The code follows this table: TRANSITIONS holds its "from" and "to"
 * columns and `#moveTo` refuses any other move; every event that ends the connection goes to
 * `#end`, the one place that moves to `closed`.
 *
 *   from        event                                            to       then
 *   connecting  CONNACK accepted                                 open     connect() resolves
 *   connecting  refused, no CONNACK in time, aborted, transport  closed   connect() rejects
 *               cannot open, protocol error, socket ended or
 *               failed, write failed
 *   open        disconnect()                                     closing  DISCONNECT sent;
 *                                                                         waiters reject
 *   open        no SUBACK, PUBACK or PINGRESP in time, protocol  closed   waiters reject;
 *               error (MQTT 5: told in a DISCONNECT first),               `closed` says why
 *               DISCONNECT from the broker, socket ended or
 *               failed, write failed, destroy()
 *   closing     the broker closed its side, disconnectTimeoutMs  closed   `closed` says null;
 *               passed, write failed, destroy()                           disconnect() resolves
 *   closed      anything                                         closed   nothing (ignored)
 */
import { invalidArgument } from "../../text.ts";
import { MqttError, protocolError, reasonName } from "./errors.ts";
import { Framer } from "./framer.ts";
import { Inflight, PACKET_ID_MAX } from "./inflight.ts";
import { Keepalive } from "./keepalive.ts";
import {
  type ConnackPacket,
  decodePacket,
  type DisconnectPacket,
  encodePacket,
  type Packet,
  PACKET_MAX,
  type PubackPacket,
  type PublishPacket,
  setPublishId,
  type SubackPacket,
} from "./packets.ts";
import type { Properties } from "./properties.ts";
import { openTransport, type Transport } from "./transport.ts";
import type {
  Connack,
  ConnectOptions,
  IncomingMessage,
  PublishOptions,
  PublishProperties,
  SubscribeOptions,
} from "./types.ts";
import {
  checkBoolean,
  checkBytes,
  checkConnectOptions,
  checkInteger,
  checkPublishProperties,
  checkTopicFilter,
  checkTopicName,
  type Settings,
} from "./validate.ts";

type State = "connecting" | "open" | "closing" | "closed";

/** The moves of the table above: from each state, where it may go. */
const TRANSITIONS: Readonly<Record<State, readonly State[]>> = {
  connecting: ["open", "closed"],
  open: ["closing", "closed"],
  closing: ["closed"],
  closed: [],
};

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: MqttError): void;
}

/** A request in flight, and the timer of its deadline (ackTimeoutMs). */
type Pending =
  | { kind: "publish"; waiter: Waiter<number>; timer: number | undefined }
  | { kind: "subscribe"; qos: 0 | 1; waiter: Waiter<number[]>; timer: number | undefined };

/** The acknowledgement each kind of request waits for. */
const ACK_OF = { publish: "PUBACK", subscribe: "SUBACK" } as const;

/** `ms` as seconds for a message: "10 s", "0.5 s". */
function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

interface Queued {
  packet: Uint8Array;
  waiter: Waiter<number>;
}

/** The reason codes a client may send in DISCONNECT (MQTT 5 section 3.14.2.1). */
// deno-fmt-ignore
const CLIENT_DISCONNECT = [
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
];

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : "unknown error";
}

/** A broker's reason string, made safe to log: printable ASCII, at most 200 characters. */
function printable(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, "?");
  return JSON.stringify(clean.length > 200 ? `${clean.slice(0, 200)}…` : clean);
}

export class MqttClient {
  readonly protocolVersion: 4 | 5;
  /** Resolves (never rejects) once the connection is gone: null after disconnect(), else why. */
  readonly closed: Promise<MqttError | null>;

  readonly #s: Settings;
  readonly #where: string;
  readonly #framer: Framer;
  readonly #inflight = new Inflight<Pending>();
  readonly #queue: Queued[] = [];
  readonly #abortConnect = new AbortController();
  #state: State = "connecting";
  #transport: Transport | null = null;
  #connect: Uint8Array | null;
  #connack: Connack | undefined;
  #serverMaximumPacketSize = PACKET_MAX;
  #receiveMaximum = PACKET_ID_MAX;
  #publishesInFlight = 0;
  #keepalive: Keepalive | null = null;
  #connectTimer: number | undefined;
  #settle: Waiter<void> | null = null;
  #resolveClosed: (e: MqttError | null) => void = () => {};
  /** While closing: disconnect()'s promise and the timer of its disconnectTimeoutMs. */
  #disconnecting: { resolve: () => void; timer: number } | null = null;

  private constructor(s: Settings, connect: Uint8Array) {
    this.#s = s;
    this.protocolVersion = s.version;
    this.#where = s.endpoint.display;
    this.#framer = new Framer(s.maximumPacketSize);
    this.#connect = connect;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /**
   * Connects and resolves after a successful CONNACK. Rejects with a TypeError for a wrong
   * option, or an MqttError: `refused` (`reasonCode` from the CONNACK), `timeout`, `aborted`,
   * `network` (`cause`: the Deno error), `protocol`.
   */
  static connect(o: ConnectOptions): Promise<MqttClient> {
    let checked: { settings: Settings; connect: Uint8Array };
    try {
      checked = checkConnectOptions(o);
    } catch (e) {
      return Promise.reject(e);
    }
    const s = checked.settings;
    if (s.signal?.aborted) {
      return Promise.reject(
        new MqttError("aborted", `Cannot connect to ${s.endpoint.display}: aborted`),
      );
    }
    const client = new MqttClient(s, checked.connect);
    return client.#start().then(() => client);
  }

  /** What the broker said in its CONNACK. */
  get connack(): Connack {
    return this.#connack ?? { sessionPresent: false, reasonCode: 0, properties: {} };
  }

  /** True from CONNACK until disconnect(), destroy() or the connection's end. */
  get connected(): boolean {
    return this.#state === "open";
  }

  // ── connecting ────────────────────────────────────────────────────────────────────────────

  #start(): Promise<void> {
    const s = this.#s;
    return new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
      this.#connectTimer = s.timers.setTimeout(() => {
        this.#connectTimer = undefined;
        this.#end(
          new MqttError(
            "timeout",
            `Cannot connect to ${this.#where}: no CONNACK within ${s.connectTimeoutMs} ms`,
          ),
        );
      }, s.connectTimeoutMs);
      s.signal?.addEventListener("abort", this.#onAbort);
      const open = openTransport(s.endpoint, {
        signal: this.#abortConnect.signal,
        ...(s.caCerts ? { caCerts: s.caCerts } : {}),
      });
      open.then((t) => {
        if (this.#state !== "connecting") {
          t.close();
          return;
        }
        this.#transport = t;
        t.start({ data: (chunk) => this.#onData(chunk), end: (e) => this.#onEnd(e) });
        const connect = this.#connect!;
        this.#connect = null;
        // It holds the password: this copy is wiped once written (Deno's socket and WebSocket
        // copy it). Other copies (the options' string, the encoder's buffer) go with the GC.
        void this.#send(connect).then(() => connect.fill(0));
      }, (e) => {
        this.#end(
          new MqttError("network", `Cannot connect to ${this.#where}: ${errorMessage(e)}`, {
            cause: e,
          }),
        );
      });
    });
  }

  readonly #onAbort = () => {
    this.#end(new MqttError("aborted", `Cannot connect to ${this.#where}: aborted`));
  };

  #onConnack(p: ConnackPacket): void {
    if (this.#state !== "connecting") {
      throw protocolError("unexpected_packet", "Cannot accept a second CONNACK");
    }
    const v = this.protocolVersion;
    if (p.mqtt311Refusal) {
      this.#end(
        new MqttError(
          "refused",
          `Cannot connect to ${this.#where}: refused by an MQTT 3.1.1 broker ` +
            `(${reasonName(p.reasonCode, 4)})`,
          { reasonCode: p.reasonCode },
        ),
      );
      return;
    }
    if (p.reasonCode !== 0 && (v === 4 || p.reasonCode >= 0x80)) {
      this.#end(
        new MqttError(
          "refused",
          `Cannot connect to ${this.#where}: refused (${reasonName(p.reasonCode, v)})`,
          { reasonCode: p.reasonCode },
        ),
      );
      return;
    }
    if (p.sessionPresent && this.#s.cleanStart) {
      throw protocolError(
        "session_present",
        "Cannot accept CONNACK: session present after a clean start",
      );
    }
    const props = p.properties;
    if (props.authenticationMethod !== undefined || props.authenticationData !== undefined) {
      throw protocolError(
        "invalid_property_value",
        "Cannot accept CONNACK: authentication the client did not ask for",
      );
    }
    this.#connack = {
      sessionPresent: p.sessionPresent,
      reasonCode: p.reasonCode,
      properties: props,
    };
    this.#serverMaximumPacketSize = props.maximumPacketSize ?? PACKET_MAX;
    this.#receiveMaximum = props.receiveMaximum ?? PACKET_ID_MAX;
    this.#moveTo("open");
    this.#stopConnecting();
    const keepaliveS = props.serverKeepAlive ?? this.#s.keepaliveS;
    const pingWaitMs = Math.min(this.#s.ackTimeoutMs, keepaliveS * 1000);
    this.#keepalive = new Keepalive(
      this.#s.timers,
      keepaliveS * 1000,
      () => void this.#send(encodePacket({ type: "pingreq" }, v)),
      () =>
        this.#end(
          new MqttError(
            "timeout",
            `Connection to ${this.#where} timed out: no PINGRESP (nor any packet) within ` +
              `${seconds(pingWaitMs)} of a PINGREQ`,
          ),
        ),
      pingWaitMs,
    );
    this.#keepalive.sent(); // the CONNECT was the last packet sent
    this.#settle?.resolve();
    this.#settle = null;
  }

  #stopConnecting(): void {
    if (this.#connectTimer !== undefined) this.#s.timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#s.signal?.removeEventListener("abort", this.#onAbort);
  }

  // ── reading ───────────────────────────────────────────────────────────────────────────────

  #onData(chunk: Uint8Array): void {
    if (this.#state !== "open" && this.#state !== "connecting") return;
    try {
      for (const packet of this.#framer.feed(chunk)) {
        this.#keepalive?.received();
        this.#onPacket(decodePacket(packet, this.protocolVersion));
        if (this.#state !== "open" && this.#state !== "connecting") return;
      }
    } catch (e) {
      this.#end(
        e instanceof MqttError ? e : new MqttError(
          "protocol",
          `Cannot process a packet from ${this.#where}: internal error`,
          { cause: e },
        ),
        true,
      );
    }
  }

  #onPacket(p: Packet): void {
    if (this.#state === "connecting" && p.type !== "connack") {
      throw protocolError("unexpected_packet", `Cannot accept ${p.type} before CONNACK`);
    }
    switch (p.type) {
      case "connack":
        return this.#onConnack(p);
      case "publish":
        return this.#onPublish(p);
      case "puback":
        return this.#onPuback(p);
      case "suback":
        return this.#onSuback(p);
      case "pingresp":
        return; // keepalive saw it
      case "disconnect":
        return this.#onDisconnect(p);
      default:
        throw protocolError("unexpected_packet", `Cannot accept ${p.type} from a broker`);
    }
  }

  #onPublish(p: PublishPacket): void {
    if (p.qos === 2) {
      throw protocolError("qos_not_subscribed", "Cannot accept PUBLISH at QoS 2: never asked for");
    }
    if (p.properties.topicAlias !== undefined) {
      throw protocolError("topic_alias", "Cannot accept PUBLISH: topic alias, none allowed");
    }
    if (p.topic === "") throw protocolError("invalid_topic", "Cannot accept PUBLISH: no topic");
    const m: IncomingMessage = {
      topic: p.topic,
      payload: p.payload,
      qos: p.qos,
      retain: p.retain,
      dup: p.dup,
      properties: publishProperties(p.properties),
    };
    try {
      this.#s.onMessage?.(m);
    } catch (e) {
      try {
        this.#s.onHandlerError?.(e);
      } catch { /* nowhere left to report it */ }
    }
    if (p.qos === 1 && this.#state === "open") {
      const ack: PubackPacket = {
        type: "puback",
        packetId: p.packetId,
        reasonCode: 0,
        properties: {},
      };
      void this.#send(encodePacket(ack, this.protocolVersion));
    }
  }

  #onPuback(p: PubackPacket): void {
    const pending = this.#inflight.get(p.packetId);
    if (pending?.kind !== "publish") {
      throw protocolError("unknown_packet_id", `Cannot accept PUBACK ${p.packetId}: not in flight`);
    }
    this.#inflight.take(p.packetId);
    this.#clearDeadline(pending);
    this.#publishesInFlight--;
    pending.waiter.resolve(p.reasonCode);
    this.#sendQueued();
  }

  #onSuback(p: SubackPacket): void {
    const pending = this.#inflight.get(p.packetId);
    if (pending?.kind !== "subscribe") {
      throw protocolError("unknown_packet_id", `Cannot accept SUBACK ${p.packetId}: not in flight`);
    }
    if (p.reasonCodes.length !== 1) {
      throw protocolError("invalid_length", `Cannot accept SUBACK: ${p.reasonCodes.length} codes`);
    }
    const rc = p.reasonCodes[0]!;
    if (rc < 0x80 && rc > pending.qos) {
      throw protocolError("invalid_reason_code", `Cannot accept SUBACK: QoS ${rc} granted`);
    }
    this.#inflight.take(p.packetId);
    this.#clearDeadline(pending);
    pending.waiter.resolve(p.reasonCodes);
    this.#sendQueued();
  }

  #onDisconnect(p: DisconnectPacket): void {
    if (this.protocolVersion === 4) {
      throw protocolError(
        "unexpected_packet",
        "Cannot accept DISCONNECT from an MQTT 3.1.1 broker",
      );
    }
    const why = p.properties.reasonString;
    const tail = why === undefined ? "" : `: ${printable(why)}`;
    this.#end(
      new MqttError(
        "disconnected",
        `Connection closed by ${this.#where}: DISCONNECT ${reasonName(p.reasonCode, 5)}${tail}`,
        { reasonCode: p.reasonCode },
      ),
    );
  }

  /** The transport ended: the broker closed its side, or the socket failed. */
  #onEnd(error: Error | null): void {
    if (error instanceof MqttError) return this.#end(error);
    const when = this.#state === "connecting" ? " before CONNACK" : "";
    this.#end(
      error === null
        ? new MqttError("network", `Connection closed by ${this.#where}${when}`)
        : new MqttError(
          "network",
          `Connection to ${this.#where} failed${when}: ${errorMessage(error)}`,
          { cause: error },
        ),
    );
  }

  // ── writing ───────────────────────────────────────────────────────────────────────────────

  /** Queues `bytes` behind earlier writes; true once written, false when the connection failed. */
  #send(bytes: Uint8Array): Promise<boolean> {
    const t = this.#transport;
    if (t === null) return Promise.resolve(false);
    this.#keepalive?.sent();
    return t.write(bytes).then(() => true, (e) => {
      this.#end(
        new MqttError("network", `Cannot write to ${this.#where}: ${errorMessage(e)}`, {
          cause: e,
        }),
      );
      return false;
    });
  }

  /** Sends queued QoS 1 publishes while the broker's Receive Maximum allows. */
  #sendQueued(): void {
    while (
      this.#state === "open" && this.#queue.length > 0 &&
      this.#publishesInFlight < this.#receiveMaximum
    ) {
      const q = this.#queue[0]!;
      const pending: Pending = { kind: "publish", waiter: q.waiter, timer: undefined };
      const id = this.#inflight.add(pending);
      if (id === null) return; // every identifier in flight: the next acknowledgement frees one
      this.#queue.shift();
      this.#publishesInFlight++;
      setPublishId(q.packet, id);
      this.#sendRequest(q.packet, id, pending);
    }
  }

  /** Sends a request that waits for an answer, and starts its deadline. */
  #sendRequest(packet: Uint8Array, id: number, pending: Pending): void {
    const ms = this.#s.ackTimeoutMs;
    pending.timer = this.#s.timers.setTimeout(() => {
      pending.timer = undefined;
      if (this.#inflight.get(id) !== pending) return;
      this.#end(
        new MqttError(
          "timeout",
          `Connection to ${this.#where} timed out: no ${ACK_OF[pending.kind]} for packet ${id} ` +
            `within ${seconds(ms)}`,
        ),
      );
    }, ms);
    void this.#send(packet);
  }

  #clearDeadline(pending: Pending): void {
    if (pending.timer !== undefined) this.#s.timers.clearTimeout(pending.timer);
    pending.timer = undefined;
  }

  /**
   * Publishes. QoS 1 resolves with the PUBACK reason code (MQTT 3.1.1: 0; >= 0x80 is the
   * broker's refusal); QoS 0 resolves 0 once written. Rejects with MqttError `closed` when the
   * connection ends first, `too_large` (nothing sent), `unsupported` (retain refused by the
   * broker), or a TypeError for a wrong argument.
   */
  publish(topic: string, payload: Uint8Array, o: PublishOptions): Promise<number> {
    try {
      checkTopicName(topic, "publish topic");
      checkBytes(payload, "publish payload");
      if (typeof o !== "object" || o === null) throw invalidArgument("Invalid publish options");
      const requested = checkInteger(o.qos, 0, 1, "publish option qos") as 0 | 1;
      const retain = checkBoolean(o.retain, "publish option retain") ?? false;
      const v5 = this.protocolVersion === 5;
      const properties = v5 ? checkPublishProperties(o.properties, "publish properties") : {};
      if (this.#state !== "open") return Promise.reject(this.#closedError("publish"));
      const server = this.connack.properties;
      if (retain && server.retainAvailable === false) {
        throw new MqttError("unsupported", `Cannot publish retained: ${this.#where} has no retain`);
      }
      const qos = server.maximumQoS === 0 ? 0 : requested;
      const packet = encodePacket({
        type: "publish",
        topic,
        payload,
        qos,
        retain,
        dup: false,
        packetId: qos === 1 ? 1 : 0,
        properties,
      }, this.protocolVersion);
      if (packet.length > this.#serverMaximumPacketSize) {
        throw new MqttError(
          "too_large",
          `Cannot publish ${packet.length} bytes: the maximum packet size of ${this.#where} is ` +
            `${this.#serverMaximumPacketSize}`,
        );
      }
      if (qos === 0) {
        return this.#send(packet).then((ok) => {
          if (!ok) throw this.#closedError("publish");
          return 0;
        });
      }
      return new Promise((resolve, reject) => {
        this.#queue.push({ packet, waiter: { resolve, reject } });
        this.#sendQueued();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Subscribes to one filter; resolves with the SUBACK reason codes (MQTT 3.1.1: the granted
   * QoS or 0x80). Rejects like publish().
   */
  subscribe(filter: string, o: SubscribeOptions): Promise<number[]> {
    try {
      checkTopicFilter(filter, "subscribe filter");
      if (typeof o !== "object" || o === null) throw invalidArgument("Invalid subscribe options");
      const qos = checkInteger(o.qos, 0, 1, "subscribe option qos") as 0 | 1;
      const noLocal = checkBoolean(o.noLocal, "subscribe option noLocal") ?? false;
      const rap = checkBoolean(o.retainAsPublished, "subscribe option retainAsPublished") ?? false;
      const rh = o.retainHandling === undefined
        ? 0
        : checkInteger(o.retainHandling, 0, 2, "subscribe option retainHandling") as 0 | 1 | 2;
      if (this.#state !== "open") return Promise.reject(this.#closedError("subscribe"));
      const server = this.connack.properties;
      if (server.wildcardSubscriptionAvailable === false && /[+#]/.test(filter)) {
        throw new MqttError("unsupported", `Cannot subscribe: ${this.#where} has no wildcards`);
      }
      if (server.sharedSubscriptionAvailable === false && filter.startsWith("$share/")) {
        throw new MqttError("unsupported", `Cannot subscribe: ${this.#where} has no sharing`);
      }
      return new Promise((resolve, reject) => {
        const pending: Pending = {
          kind: "subscribe",
          qos,
          waiter: { resolve, reject },
          timer: undefined,
        };
        const id = this.#inflight.add(pending);
        if (id === null) {
          reject(new MqttError("unsupported", "Cannot subscribe: 65535 packets in flight"));
          return;
        }
        const packet = encodePacket({
          type: "subscribe",
          packetId: id,
          subscriptions: [{ filter, qos, noLocal, retainAsPublished: rap, retainHandling: rh }],
          properties: {},
        }, this.protocolVersion);
        if (packet.length > this.#serverMaximumPacketSize) {
          this.#inflight.take(id);
          reject(new MqttError("too_large", `Cannot subscribe: ${packet.length} bytes`));
          return;
        }
        this.#sendRequest(packet, id, pending);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ── ending ────────────────────────────────────────────────────────────────────────────────

  #closedError(what: string): MqttError {
    return new MqttError("closed", `Cannot ${what}: the connection to ${this.#where} is closed`);
  }

  /** Rejects everything waiting for the broker. */
  #rejectAll(cause: MqttError | null): void {
    const o = cause === null ? {} : { cause };
    for (const p of this.#inflight.drain()) {
      this.#clearDeadline(p);
      p.waiter.reject(new MqttError("closed", `Connection closed before the ${ACK_OF[p.kind]}`, o));
    }
    for (const q of this.#queue.splice(0)) {
      q.waiter.reject(new MqttError("closed", "Connection closed before the publish was sent", o));
    }
    this.#publishesInFlight = 0;
  }

  /** Moves to `to` when the table allows it (TRANSITIONS); false, and no move, otherwise. */
  #moveTo(to: State): boolean {
    if (!TRANSITIONS[this.#state].includes(to)) return false;
    this.#state = to;
    return true;
  }

  /**
   * The one place the connection ends, whatever the cause (the table's moves to `closed`).
   *
   * While closing, disconnect() is finished: the transport is closed, `closed` resolves null
   * and disconnect() resolves, whatever `why` (null: its own deadline, or its DISCONNECT could
   * not be written). Otherwise `why` is what everything waiting rejects with and what `closed`
   * reports; `tellBroker`: a protocol error is first told to an MQTT 5 broker in a DISCONNECT
   * with its reason code (only for what the broker sent: not when it is gone or said goodbye).
   */
  #end(why: MqttError | null, tellBroker = false): void {
    const from = this.#state;
    if (!this.#moveTo("closed")) return;
    const t = this.#transport;
    if (from === "closing") {
      const d = this.#disconnecting;
      this.#disconnecting = null;
      if (d) this.#s.timers.clearTimeout(d.timer);
      t?.close();
      this.#resolveClosed(null);
      d?.resolve();
      return;
    }
    // Not closing, so not from disconnect(): why is never null here.
    const error = why ?? new MqttError("closed", `Connection to ${this.#where} closed`);
    this.#stopConnecting();
    this.#abortConnect.abort();
    this.#keepalive?.stop();
    this.#rejectAll(error);
    this.#settle?.reject(error);
    this.#settle = null;
    const rc = error.reasonCode;
    if (
      t !== null && tellBroker && error.code === "protocol" && rc !== undefined &&
      this.protocolVersion === 5
    ) {
      const bytes = encodePacket({ type: "disconnect", reasonCode: rc, properties: {} }, 5);
      this.#closeAfter(t, t.write(bytes)).then(() => this.#resolveClosed(error));
      return;
    }
    t?.close();
    this.#resolveClosed(error);
  }

  /** Closes `t` once `written` settles, or after disconnectTimeoutMs. */
  #closeAfter(t: Transport, written: Promise<unknown>): Promise<void> {
    const timers = this.#s.timers;
    return new Promise<void>((resolve) => {
      let timer: number | undefined;
      const done = () => {
        if (timer !== undefined) timers.clearTimeout(timer);
        timer = undefined;
        t.close();
        resolve();
      };
      timer = timers.setTimeout(done, this.#s.disconnectTimeoutMs);
      written.then(done, done);
    });
  }

  /**
   * Graceful end: DISCONNECT with `reasonCode` (0 = normal: the broker drops the will; MQTT
   * 3.1.1 has no reason code), then the transport is closed once the broker closed its side
   * or after disconnectTimeoutMs. Waiting publishes reject with `closed`. Idempotent.
   */
  disconnect(reasonCode = 0): Promise<void> {
    if (this.protocolVersion === 5 && !CLIENT_DISCONNECT.includes(reasonCode)) {
      return Promise.reject(invalidArgument("Invalid disconnect reason code"));
    }
    if (!this.#moveTo("closing")) return this.closed.then(() => {});
    this.#keepalive?.stop();
    this.#rejectAll(null);
    const t = this.#transport!;
    return new Promise<void>((resolve) => {
      // Ends in #end: when the broker closes its side, at the deadline, or on a failed write.
      const timer = this.#s.timers.setTimeout(() => this.#end(null), this.#s.disconnectTimeoutMs);
      this.#disconnecting = { resolve, timer };
      const bytes = encodePacket(
        { type: "disconnect", reasonCode, properties: {} },
        this.protocolVersion,
      );
      t.write(bytes).then(() => t.closeWrite()).catch(() => this.#end(null));
    });
  }

  /**
   * Abrupt end: closes the transport now, without DISCONNECT (the broker sends the will); in
   * the middle of disconnect(), finishes it.
   */
  destroy(): void {
    this.#end(new MqttError("closed", `Connection to ${this.#where} destroyed`));
  }
}

/** The properties of an incoming PUBLISH, as the public type has them. */
function publishProperties(p: Properties): PublishProperties {
  const out: PublishProperties = {};
  if (p.messageExpiryInterval !== undefined) out.messageExpiryInterval = p.messageExpiryInterval;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  return out;
}
