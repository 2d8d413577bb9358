/**
 * Test support for the bus: an independent MQTT 5 peer (Debian's paho-mqtt and cbor2, driven
 * over JSON lines), a TCP proxy whose connections a test can cut without a DISCONNECT, an MQTT
 * proxy that withholds the broker's acknowledgements a test chooses, a clock that records the
 * delays slept on it, and MQTT client timers on that clock.
 */
import { type Clock } from "../../src/clock.ts";
import { FakeClock } from "./fake_clock.ts";
import type { MqttTimers } from "../../src/bus/mqtt/mod.ts";
import { PYTHON } from "./python.ts";
import { eachLine } from "./lines.ts";

const PEER_SCRIPT = new URL("./mqtt_peer.py", import.meta.url).pathname;

export interface PeerMessage {
  ev: "message";
  topic: string;
  retain: boolean;
  qos: number;
  hex: string;
  cbor: unknown;
  shape: unknown;
  cbor_error?: string;
  expiry: number | null;
  response_topic: string | null;
  correlation_hex: string | null;
}

export interface PeerEvent {
  ev: string;
  [k: string]: unknown;
}

export interface ConnectOptions {
  port: number;
  username?: string;
  password?: string;
  clientId?: string;
  protocol?: 4 | 5;
}

export interface PublishRequest {
  topic: string;
  payload?: Uint8Array;
  qos?: 0 | 1;
  retain?: boolean;
  responseTopic?: string;
  correlation?: Uint8Array;
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function unhex(h: string): Uint8Array {
  return new Uint8Array((h.match(/../g) ?? []).map((x) => parseInt(x, 16)));
}

let peerSeq = 0;

/** One paho-mqtt client in a Python process. Every event it reports is kept in `events`. */
export class Peer {
  readonly events: PeerEvent[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  #waiters: (() => void)[] = [];
  #stderr = "";
  #ids = 0;

  private constructor() {
    const child = new Deno.Command(PYTHON, {
      args: ["-u", PEER_SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reading = this.#read(child.stdout);
    (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
      }
    })().catch(() => {});
  }

  /** Starts a peer and connects it; resolves with the peer and its CONNACK reason code. */
  static async connect(o: ConnectOptions): Promise<{ peer: Peer; rc: number }> {
    const peer = new Peer();
    const rc = await peer.#connect(o);
    return { peer, rc };
  }

  /** Connects and requires success (CONNACK 0). */
  static async open(o: ConnectOptions): Promise<Peer> {
    const { peer, rc } = await Peer.connect(o);
    if (rc !== 0) {
      await peer.close();
      throw new Error(`Peer ${o.username ?? "(anonymous)"} got CONNACK ${rc}`);
    }
    return peer;
  }

  async #read(stdout: ReadableStream<Uint8Array>): Promise<void> {
    const wake = () => {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    };
    await eachLine(stdout, (line) => {
      if (line.trim()) this.events.push(JSON.parse(line));
      wake();
    });
    wake();
  }

  async #send(req: Record<string, unknown>): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
  }

  /** Waits until `pick` finds something in the events (real time, `timeoutMs`). */
  async waitFor<T>(pick: (events: PeerEvent[]) => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = pick(this.events);
      if (found !== undefined) return found;
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `Peer: timed out; events: ${JSON.stringify(this.events).slice(-1500)}; stderr: ${
            this.#stderr.slice(-1500)
          }`,
        );
      }
      let t: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        t = setTimeout(r, Math.min(left, 100));
      });
      clearTimeout(t);
    }
  }

  async #connect(o: ConnectOptions): Promise<number> {
    await this.#send({
      op: "connect",
      port: o.port,
      username: o.username ?? null,
      password: o.password ?? null,
      client_id: o.clientId ?? `peer-${Deno.pid}-${++peerSeq}`,
      protocol: o.protocol ?? 5,
    });
    const ev = await this.waitFor((es) => es.find((e) => e.ev === "connack"));
    return ev.rc as number;
  }

  /**
   * Subscribes; resolves with the SUBACK reason codes. `rap` (MQTT 5 Retain As Published) shows
   * on live messages the retain flag linkd set.
   */
  async subscribe(topic: string, opts: { qos?: 0 | 1; rap?: boolean } = {}): Promise<number[]> {
    const id = ++this.#ids;
    await this.#send({ op: "subscribe", id, topic, qos: opts.qos ?? 1, rap: opts.rap ?? false });
    const ev = await this.waitFor((es) => es.find((e) => e.ev === "suback" && e.id === id));
    return ev.rcs as number[];
  }

  /** Publishes; resolves with the PUBACK reason code read off the wire (QoS 1), or 0. */
  async publish(p: PublishRequest): Promise<number> {
    const id = ++this.#ids;
    await this.#send({
      op: "publish",
      id,
      topic: p.topic,
      hex: hex(p.payload ?? new Uint8Array(0)),
      qos: p.qos ?? 1,
      retain: p.retain ?? false,
      response_topic: p.responseTopic ?? null,
      correlation_hex: p.correlation ? hex(p.correlation) : null,
    });
    const ev = await this.waitFor((es) => es.find((e) => e.ev === "published" && e.id === id));
    return ev.rc as number;
  }

  /**
   * Publishes `count` commands at once, each with the response topic and correlation data
   * `prefix` + its index as 4 bytes.
   */
  async flood(
    topic: string,
    payload: Uint8Array,
    count: number,
    responseTopic: string,
    prefix: Uint8Array,
  ): Promise<void> {
    const id = ++this.#ids;
    await this.#send({
      op: "flood",
      id,
      topic,
      hex: hex(payload),
      count,
      response_topic: responseTopic,
      correlation_prefix: hex(prefix),
    });
    await this.waitFor((es) => es.find((e) => e.ev === "flooded" && e.id === id), 30_000);
  }

  /** Every message received so far (on `topic` when given). */
  messages(topic?: string): PeerMessage[] {
    return this.events.filter((e): e is PeerMessage & PeerEvent =>
      e.ev === "message" && (topic === undefined || e.topic === topic)
    );
  }

  /** Waits for the `n`th message (1-based) that `match` accepts. */
  waitMessage(match: (m: PeerMessage) => boolean, n = 1, timeoutMs = 5000): Promise<PeerMessage> {
    return this.waitFor((es) => {
      const ms = es.filter((e) => e.ev === "message").map((e) => e as unknown as PeerMessage)
        .filter(match);
      return ms[n - 1];
    }, timeoutMs);
  }

  /** Waits for `count` messages that `match` accepts; returns them all. */
  waitMessages(
    match: (m: PeerMessage) => boolean,
    count: number,
    timeoutMs = 5000,
  ): Promise<PeerMessage[]> {
    return this.waitFor((es) => {
      const ms = es.filter((e) => e.ev === "message").map((e) => e as unknown as PeerMessage)
        .filter(match);
      return ms.length >= count ? ms : undefined;
    }, timeoutMs);
  }

  async close(): Promise<void> {
    try {
      await this.#send({ op: "disconnect" });
      await this.#writer.close();
    } catch { /* the process is gone */ }
    const t = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await this.#child.status;
    clearTimeout(t);
    await this.#reading.catch(() => {});
  }
}

/**
 * What both proxies share: a loopback listener, a connection to the broker for each client,
 * the open connections (`cut()` drops them all at once, with no MQTT DISCONNECT), and close().
 * A subclass moves the bytes (`relay`).
 */
abstract class LoopbackProxy {
  readonly port: number;
  /** Connections accepted so far. */
  connections = 0;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;

  constructor(targetPort: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = (async () => {
      for await (const inbound of listener) {
        this.#pipe(inbound, targetPort, ++this.connections).catch(() => {});
      }
    })().catch(() => {});
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Moves bytes both ways until either side ends; `n` numbers the connection from 1. */
  protected abstract relay(inbound: Deno.Conn, outbound: Deno.Conn, n: number): Promise<void>;

  async #pipe(inbound: Deno.Conn, targetPort: number, n: number): Promise<void> {
    let outbound: Deno.Conn;
    try {
      outbound = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      inbound.close();
      return;
    }
    this.#conns.add(inbound);
    this.#conns.add(outbound);
    try {
      await this.relay(inbound, outbound, n);
    } finally {
      for (const c of [inbound, outbound]) {
        if (this.#conns.delete(c)) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      }
    }
  }

  /** Closes every proxied connection abruptly. */
  cut(): void {
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }

  async close(): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#accepting;
  }
}

/**
 * A TCP proxy in front of a broker. `cut()` drops every connection through it at once, with no
 * MQTT DISCONNECT: to the broker, the client vanished (its last will is published).
 */
export class TcpProxy extends LoopbackProxy {
  #frozen = false;

  protected async relay(inbound: Deno.Conn, outbound: Deno.Conn): Promise<void> {
    const copy = async (from: Deno.Conn, to: Deno.Conn) => {
      const buf = new Uint8Array(65536);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          if (this.#frozen) continue; // a network that swallows everything
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
        }
      } catch { /* cut */ }
      for (const c of [from, to]) {
        try {
          c.close(); // the other direction ends too
        } catch { /* closed */ }
      }
    };
    await Promise.all([copy(inbound, outbound), copy(outbound, inbound)]);
  }

  /** From now on, bytes through the proxy are swallowed: the connections stay open, mute. */
  freeze(): void {
    this.#frozen = true;
  }
}

/** A FakeClock that records every delay slept on it. */
export class RecordingClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(readonly inner: FakeClock = new FakeClock()) {}
  now(): number {
    return this.inner.now();
  }
  monotonic(): number {
    return this.inner.monotonic();
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return this.inner.sleep(ms, signal);
  }
}

/** Real-time wait, for sockets and child processes (never for linkd's own clock). */
export function realDelay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` in real time until true or `timeoutMs` passes. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await realDelay(10);
  }
}

/** MqttTimers on `clock`: the MQTT client's deadlines then run on the bus's (fake) time. */
export function clockTimers(clock: Clock): MqttTimers {
  const live = new Map<number, AbortController>();
  let next = 1;
  return {
    setTimeout(fn, ms) {
      const id = next++;
      const stop = new AbortController();
      live.set(id, stop);
      clock.sleep(ms, stop.signal).then(() => {
        if (live.delete(id)) fn();
      }, () => {});
      return id;
    },
    clearTimeout(id) {
      live.get(id)?.abort();
      live.delete(id);
    },
    monotonic: () => clock.monotonic(),
  };
}

/** Packet type names by MQTT control packet type. */
const PACKET_NAMES: Record<number, string> = {
  1: "connect",
  2: "connack",
  3: "publish",
  4: "puback",
  8: "subscribe",
  9: "suback",
  10: "unsubscribe",
  11: "unsuback",
  12: "pingreq",
  13: "pingresp",
  14: "disconnect",
};

/** A packet from the broker to the client, as MqttProxy's rule sees it. */
export interface BrokerPacket {
  /** Which connection through the proxy, from 1. */
  conn: number;
  type: string;
  /** PUBACK, SUBACK, UNSUBACK: the packet identifier; else null. */
  packetId: number | null;
  /** PUBACK: the topic of the client's PUBLISH it acknowledges. */
  topic?: string;
}

/** Whole MQTT packets out of a byte stream (no checks: the real peers check). */
class Frames {
  #buf = new Uint8Array(0);
  push(chunk: Uint8Array): Uint8Array[] {
    const b = new Uint8Array(this.#buf.length + chunk.length);
    b.set(this.#buf);
    b.set(chunk, this.#buf.length);
    const out: Uint8Array[] = [];
    let off = 0;
    for (;;) {
      let len = 0, mul = 1, i = off + 1;
      for (; i < b.length; i++) {
        len += (b[i]! & 0x7f) * mul;
        mul *= 128;
        if ((b[i]! & 0x80) === 0) break;
      }
      if (i >= b.length || i + 1 + len > b.length) break;
      out.push(b.slice(off, i + 1 + len));
      off = i + 1 + len;
    }
    this.#buf = b.slice(off);
    return out;
  }
}

/** Where the variable header of `p` starts (after the fixed header). */
function bodyStart(p: Uint8Array): number {
  let i = 1;
  while (p[i]! & 0x80) i++;
  return i + 1;
}

/**
 * An MQTT-aware proxy in front of a real broker: it passes every packet whole, except the
 * broker's packets that `withhold` picks (they are recorded in `withheld`), so everything else
 * is the real broker's behaviour. `stall()` makes it a broker that answers nothing and reads
 * nothing more.
 */
export class MqttProxy extends LoopbackProxy {
  readonly withheld: BrokerPacket[] = [];
  /** Every packet from the broker, passed on or withheld. */
  readonly seen: BrokerPacket[] = [];
  /** True drops the broker's packet (the client never sees it). */
  withhold: (p: BrokerPacket) => boolean = () => false;
  #stalled = false;
  #unstall: (() => void)[] = [];

  /** From now on the broker answers nothing and nothing more is read from the clients. */
  stall(): void {
    this.#stalled = true;
    this.withhold = () => true;
  }

  /** Resolves once `count` packets of `type` were withheld (real time, at most `timeoutMs`). */
  async waitWithheld(type: string, count = 1, timeoutMs = 10_000): Promise<BrokerPacket[]> {
    await until(
      () => this.withheld.filter((p) => p.type === type).length >= count,
      `${count} withheld ${type}`,
      timeoutMs,
    );
    return this.withheld.filter((p) => p.type === type);
  }

  protected async relay(inbound: Deno.Conn, outbound: Deno.Conn, n: number): Promise<void> {
    /** The client's QoS 1 publishes in flight: packet id → topic. */
    const topics = new Map<number, string>();
    const close = () => {
      for (const c of [inbound, outbound]) {
        try {
          c.close(); // the other direction ends too
        } catch { /* closed */ }
      }
    };
    const copy = async (from: Deno.Conn, to: Deno.Conn, fromClient: boolean) => {
      const frames = new Frames();
      const buf = new Uint8Array(65536);
      try {
        for (;;) {
          if (fromClient && this.#stalled) {
            await new Promise<void>((r) => this.#unstall.push(r)); // until close()
            break;
          }
          const read = await from.read(buf);
          if (read === null) break;
          if (fromClient && this.#stalled) continue; // read while stalling: never passed on
          for (const p of frames.push(buf.subarray(0, read))) {
            const type = PACKET_NAMES[p[0]! >> 4] ?? "reserved";
            const at = bodyStart(p);
            if (fromClient) {
              if (type === "publish" && ((p[0]! >> 1) & 3) > 0) {
                const tlen = (p[at]! << 8) | p[at + 1]!;
                const topic = new TextDecoder().decode(p.subarray(at + 2, at + 2 + tlen));
                topics.set((p[at + 2 + tlen]! << 8) | p[at + 3 + tlen]!, topic);
              }
            } else {
              const hasId = type === "puback" || type === "suback" || type === "unsuback";
              const packetId = hasId ? (p[at]! << 8) | p[at + 1]! : null;
              const seen: BrokerPacket = { conn: n, type, packetId };
              if (type === "puback" && packetId !== null) {
                const topic = topics.get(packetId);
                if (topic !== undefined) seen.topic = topic;
                topics.delete(packetId);
              }
              this.seen.push(seen);
              if (this.withhold(seen)) {
                this.withheld.push(seen);
                continue;
              }
            }
            let off = 0;
            while (off < p.length) off += await to.write(p.subarray(off));
          }
        }
      } catch { /* cut */ }
      close();
    };
    await Promise.all([copy(inbound, outbound, true), copy(outbound, inbound, false)]);
  }

  override async close(): Promise<void> {
    for (const r of this.#unstall.splice(0)) r();
    await super.close();
  }
}
