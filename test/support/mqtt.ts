/**
 * Test support for the MQTT client: fake timers, a scripted broker on 127.0.0.1 that reads the
 * client's packets and writes whatever bytes a test crafts, hex helpers, and a check that a
 * secret never shows in an error.
 */
import * as assert from "uvu/assert";
import { Framer } from "../../src/bus/mqtt/framer.ts";
import {
  type ConnectPacket,
  decodePacket,
  encodePacket,
  type Packet,
  PACKET_MAX,
  type Version,
} from "../../src/bus/mqtt/packets.ts";
import type { Properties } from "../../src/bus/mqtt/properties.ts";
import type { MqttTimers } from "../../src/bus/mqtt/types.ts";

/** Bytes from hex, ignoring spaces and `|` (for readable vectors). */
export function bytes(h: string): Uint8Array {
  const clean = h.replace(/[\s|]/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`Bad hex: ${h}`);
  return new Uint8Array((clean.match(/../g) ?? []).map((x) => parseInt(x, 16)));
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function realDelay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Lets pending promise callbacks and I/O run a little. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await realDelay(1);
}

/** Timers that run only when a test advances them. */
export class FakeTimers implements MqttTimers {
  now = 0;
  /** Without it, keepalive sets a timer per packet (the MqttTimers default has none). */
  monotonic = (): number => this.now;
  #next = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout = (fn: () => void, ms: number): number => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  };

  clearTimeout = (id: number): void => {
    this.#timers.delete(id);
  };

  /** The delays from now of the pending timers, sorted. */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  /** Moves time forward `ms`, running every timer due on the way, in order. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) {
        if (e[1].at <= target && (best === undefined || e[1].at < best[1].at)) best = e;
      }
      if (best === undefined) break;
      this.#timers.delete(best[0]);
      this.now = best[1].at;
      best[1].fn();
    }
    this.now = target;
  }
}

/** One connection accepted by the FakeBroker. */
export class FakeConn {
  readonly #conn: Deno.Conn;
  readonly #framer = new Framer(PACKET_MAX);
  readonly #packets: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  #eof = false;
  version: Version = 5;
  /** Every byte received, in order. */
  received: number[] = [];
  /** Keep the connection open after the client's FIN (a broker that never closes). */
  holdOpen = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#read().catch(() => {});
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        this.received.push(...chunk);
        for (const p of this.#framer.feed(chunk)) this.#packets.push(p.slice());
        this.#wake();
      }
    } catch { /* closed */ }
    this.#eof = true;
    if (!this.holdOpen) this.close(); // as a broker does once the client is gone
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async #wait(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`FakeConn: timed out waiting for ${what}`);
      let t: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        t = setTimeout(r, Math.min(left, 50));
      });
      clearTimeout(t);
    }
  }

  /** The next whole packet the client sent, as bytes. */
  async nextRaw(timeoutMs = 3000): Promise<Uint8Array> {
    await this.#wait(() => this.#packets.length > 0 || this.#eof, timeoutMs, "a packet");
    const p = this.#packets.shift();
    if (p === undefined) throw new Error("FakeConn: the client closed the connection");
    return p;
  }

  /** The next packet the client sent, decoded (a CONNECT sets the version). */
  async next(timeoutMs = 3000): Promise<Packet> {
    const p = decodePacket(await this.nextRaw(timeoutMs), this.version);
    if (p.type === "connect") this.version = p.protocolVersion;
    return p;
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    timeoutMs = 3000,
  ): Promise<Extract<Packet, { type: T }>> {
    const p = await this.next(timeoutMs);
    assert.is(p.type, type, `expected ${type}, got ${p.type}`);
    return p as Extract<Packet, { type: T }>;
  }

  /** Asserts that the client sends nothing for `ms` (real time). */
  async silentFor(ms: number): Promise<void> {
    await realDelay(ms);
    assert.is(this.#packets.length, 0, "the client sent nothing");
  }

  /** Resolves once the client closed the connection; returns the packets it sent before. */
  async ended(timeoutMs = 3000): Promise<Uint8Array[]> {
    await this.#wait(() => this.#eof, timeoutMs, "the client to close");
    return this.#packets.splice(0);
  }

  async write(b: Uint8Array | Packet): Promise<void> {
    const raw = b instanceof Uint8Array ? b : encodePacket(b, this.version);
    let off = 0;
    while (off < raw.length) off += await this.#conn.write(raw.subarray(off));
  }

  /** Reads the CONNECT and answers with a CONNACK (reason 0) with `properties`. */
  async accept(properties: Properties = {}): Promise<ConnectPacket> {
    const connect = await this.expect("connect");
    await this.write({ type: "connack", sessionPresent: false, reasonCode: 0, properties });
    return connect;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

/** A broker that does exactly what the test says, on 127.0.0.1 and a free port. */
export class FakeBroker {
  readonly #listener: Deno.Listener;
  readonly port: number;
  readonly conns: FakeConn[] = [];

  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async next(): Promise<FakeConn> {
    const c = new FakeConn(await this.#listener.accept());
    this.conns.push(c);
    return c;
  }

  close(): void {
    for (const c of this.conns) c.close();
    try {
      this.#listener.close();
    } catch { /* closed */ }
  }
}

/** Asserts that `secret` shows nowhere in `e`: message, stack, cause chain, inspection. */
export function assertNoSecret(e: unknown, secret: string): void {
  const seen = new Set<unknown>();
  let x: unknown = e;
  while (x !== undefined && x !== null && !seen.has(x)) {
    seen.add(x);
    const views = [String(x), Deno.inspect(x, { depth: 10, showHidden: true })];
    if (x instanceof Error) views.push(x.message, x.stack ?? "");
    try {
      views.push(JSON.stringify(x));
    } catch { /* cyclic */ }
    for (const v of views) assert.not.ok(v.includes(secret), `the secret shows in: ${v}`);
    x = x instanceof Error ? x.cause : undefined;
  }
}

/**
 * `p`, or a failure after `ms` of real time: a test awaiting a promise that never settles
 * must fail, not leave Deno with nothing to do (which exits quietly, mid-suite).
 */
export async function within<T>(p: Promise<T>, ms = 5000, what = "a promise"): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** The error a promise rejects with (fails when it resolves, or hangs). */
export async function rejection(p: Promise<unknown>, ms = 5000): Promise<unknown> {
  try {
    await within(p, ms, "a rejection");
  } catch (e) {
    if (e instanceof Error && e.message === "Timed out waiting for a rejection") throw e;
    return e;
  }
  throw new Error("expected a rejection");
}
