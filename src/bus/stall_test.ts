/**
 * A broker that stalls: Debian's real mosquitto behind a proxy that withholds one kind of
 * acknowledgement (SUBACK, PUBACK, PINGRESP) on the first connection, and passes everything else
 * as the broker sent it. linkd's clock and its MQTT client's deadlines run on one fake time
 * (`clockTimers`), the sockets in real time. For each: the deadline fires at ACK_TIMEOUT_MS and
 * not before, one log line names the packet, its identifier and the deadline, the bus
 * reconnects with its backoff, and the state and a token reach an independent subscriber.
 * (linkd never sends UNSUBSCRIBE, so there is no UNSUBACK to withhold.) The seconds printed are
 * measurements, not assertions.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AccessToken, LinkState } from "../contract.ts";
import { type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { ACK_TIMEOUT_MS, type Bus, type BusOptions, connectBus, RECONNECT_TABLE_S } from "./bus.ts";
import {
  clockTimers,
  MqttProxy,
  Peer,
  type PeerMessage,
  realDelay,
  RecordingClock,
  until,
} from "../../test/support/bus.ts";

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const LINKED: LinkState = { state: "linked", since: T0, scopes: ["alexa:all"] };
const TOKEN: AccessToken = {
  access_token: "Atza|stall",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_at: T0 + 3_600_000,
  expires_in: 3600,
};
/** The first reconnect delay: `random` 0.5 means no jitter. */
const FIRST_DELAY_MS = RECONNECT_TABLE_S[0]! * 1000;

const cleanups: (() => Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

interface Rig {
  broker: Mosquitto;
  proxy: MqttProxy;
  audio: Peer;
  clock: RecordingClock;
  logs: string[];
  options: BusOptions;
}

async function rig(extra: Partial<BusOptions> = {}): Promise<Rig> {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const proxy = new MqttProxy(broker.port);
  cleanups.push(() => proxy.close());
  const audio = await Peer.open({ port: broker.port, clientId: "audio" });
  cleanups.push(() => audio.close());
  await audio.subscribe("linkd/#", { rap: true });
  const clock = new RecordingClock();
  const logs: string[] = [];
  const options: BusOptions = {
    url: proxy.url,
    prefix: "linkd",
    clock,
    random: () => 0.5,
    timers: clockTimers(clock),
    log: (l) => logs.push(l),
    ...extra,
  };
  return { broker, proxy, audio, clock, logs, options };
}

/** Connects r's bus; the cleanup closes it, moving linkd's time on (its close is bounded). */
function open(r: Rig): Promise<Bus> {
  const stop = new AbortController(); // a failed test must not wait for ever for its bus
  const p = connectBus({ ...r.options, signal: stop.signal });
  cleanups.push(async () => {
    stop.abort();
    const b = await p.catch(() => null);
    let closed = false;
    const closing = b?.close().then(() => (closed = true));
    for (let i = 0; i < 100 && b && !closed; i++) {
      await r.clock.inner.advance(100);
      await realDelay(5);
    }
    await closing;
  });
  return p;
}

/** The lines that say an acknowledgement did not come. */
const stalls = (logs: string[]) => logs.filter((l) => /timed out: no [A-Z]+/.test(l));

/**
 * Asserts nothing fired before the deadline, then moves linkd's time to it; returns the real
 * milliseconds from the deadline until `recovered`.
 */
async function expire(r: Rig, ack: string, recovered: () => Promise<unknown>): Promise<number> {
  await r.clock.inner.advance(ACK_TIMEOUT_MS - 1);
  await realDelay(50);
  assert.equal(stalls(r.logs), [], `nothing before the deadline: ${r.logs.join("\n")}`);
  const t0 = performance.now();
  await r.clock.inner.advance(1);
  await until(() => stalls(r.logs).length > 0, `the ${ack} deadline`);
  const line = stalls(r.logs)[0]!;
  assert.match(line, new RegExp(`no ${ack}\\b.* within ${ACK_TIMEOUT_MS / 1000} s`));
  assert.match(line, /reconnecting in 0\.3 s$/);
  await r.clock.inner.advance(FIRST_DELAY_MS); // the backoff
  await recovered();
  return performance.now() - t0;
}

const stateOf = (m: PeerMessage) => (m.cbor as LinkState).state;

test("no SUBACK: the deadline drops the connection, linkd reconnects, subscribes, publishes", async () => {
  const r = await rig();
  r.proxy.withhold = (p) => p.conn === 1 && p.type === "suback";
  const bus = open(r);
  let up = false;
  bus.then(() => (up = true), () => {});
  const [held] = await r.proxy.waitWithheld("suback");
  await realDelay(50);
  assert.not.ok(up, "not ready without a SUBACK");
  const ms = await expire(r, "SUBACK", async () => {
    const b = await bus;
    await b.publishState(LINKED);
    await b.publishToken(TOKEN);
    await r.audio.waitMessage((m) => m.topic === "linkd/token");
  });
  assert.match(stalls(r.logs)[0]!, `no SUBACK for packet ${held!.packetId} within 10 s`);
  assert.equal(stalls(r.logs).length, 1, r.logs.join("\n"));
  assert.is(r.proxy.connections, 2);
  await r.audio.waitMessage((m) => m.topic === "linkd/state" && stateOf(m) === "linked");
  // the first connection's will (dropped without DISCONNECT), then the state
  assert.equal(r.audio.messages("linkd/state").map(stateOf), ["offline", "linked"]);
  // commands work on the new connection: the subscription was made again
  const b = await bus;
  b.onCommand(() => Promise.resolve({ ok: true }));
  await r.audio.publish({
    topic: "linkd/cmd/pair",
    payload: new Uint8Array([0xa0]),
    responseTopic: "linkd/reply/audio/1",
  });
  await r.audio.waitMessage((m) => m.topic === "linkd/reply/audio/1");
  console.log(`     no SUBACK: recovered ${(ms / 1000).toFixed(2)} s (real) after the deadline`);
});

test("no PUBACK: later publishes are not held back; the deadline reconnects; state and token come back", async () => {
  let bus: Bus | null = null;
  let reconnects = 0;
  const r = await rig({
    onReconnect: () => {
      // the owner: a fresh state and the token with the seconds it has left now
      reconnects++;
      void bus!.publishState({ ...LINKED, since: T0 + 1 });
      void bus!.publishToken({ ...TOKEN, expires_in: 3000 });
    },
  });
  r.proxy.withhold = (p) => p.conn === 1 && p.type === "puback";
  bus = await open(r);
  // Neither waits for its PUBACK, and the token is not held back behind the state.
  await within(bus.publishState(LINKED), "publishState");
  await within(bus.publishToken(TOKEN), "publishToken");
  await r.audio.waitMessage((m) => m.topic === "linkd/token");
  const held = await r.proxy.waitWithheld("puback", 2);
  assert.equal(held.map((p) => p.topic), ["linkd/state", "linkd/token"]);
  const ms = await expire(r, "PUBACK", async () => {
    await r.audio.waitMessage((m) => m.topic === "linkd/token", 2);
  });
  assert.match(stalls(r.logs)[0]!, `no PUBACK for packet ${held[0]!.packetId} within 10 s`);
  assert.equal(stalls(r.logs).length, 1, r.logs.join("\n"));
  assert.is(reconnects, 1);
  // The bus never replays a token itself: the second is the owner's, with its expiry counted
  // from now (a stale one would still say 3600).
  await realDelay(200);
  const tokens = r.audio.messages("linkd/token");
  assert.is(tokens.length, 2, "the token in flight is not replayed, only the owner's");
  assert.ok(tokens[1]!.expiry !== null && tokens[1]!.expiry <= 3000, String(tokens[1]!.expiry));
  // The retained state ends up the latest one (the will's `offline` came in between).
  const late = await Peer.open({ port: r.broker.port });
  cleanups.push(() => late.close());
  await late.subscribe("linkd/state");
  const retained = await late.waitMessage((m) => m.topic === "linkd/state");
  assert.equal(retained.cbor, { ...LINKED, since: T0 + 1 });
  console.log(`     no PUBACK: recovered ${(ms / 1000).toFixed(2)} s (real) after the deadline`);
});

test("no PINGRESP: the keepalive deadline drops the connection; linkd reconnects and republishes", async () => {
  const r = await rig({ keepaliveS: 30 });
  r.proxy.withhold = (p) => p.conn === 1 && p.type === "pingresp";
  const bus = await open(r);
  await bus.publishState(LINKED);
  await r.audio.waitMessage((m) => m.topic === "linkd/state");
  await until(() => r.proxy.seen.some((p) => p.type === "puback"), "the PUBACK"); // real time
  await realDelay(20);
  await r.clock.inner.advance(30_000); // a keepalive period with nothing sent: PINGREQ
  await r.proxy.waitWithheld("pingresp");
  const ms = await expire(r, "PINGRESP", async () => {
    await r.audio.waitMessage((m) => m.topic === "linkd/state", 2);
  });
  assert.match(stalls(r.logs)[0]!, "no PINGRESP (nor any packet) within 10 s of a PINGREQ");
  assert.is(r.proxy.connections, 2);
  console.log(`     no PINGRESP: recovered ${(ms / 1000).toFixed(2)} s (real) after the deadline`);
});

test("connectBus() aborted while it waits for a SUBACK drops that connection at once", async () => {
  const r = await rig();
  r.proxy.withhold = (p) => p.type === "suback";
  const stop = new AbortController();
  const bus = connectBus({ ...r.options, signal: stop.signal });
  await r.proxy.waitWithheld("suback");
  stop.abort();
  const e = await within(bus.then(() => null, (x: unknown) => x), "connectBus");
  assert.ok(e instanceof Error && (e as { code?: string }).code === "aborted", String(e));
  // The broker saw linkd go (its will), without linkd's time moving to the SUBACK deadline.
  const will = await r.audio.waitMessage((m) => m.topic === "linkd/state");
  assert.is(stateOf(will), "offline");
  assert.equal(stalls(r.logs), []);
});

test("close() is bounded when the broker answers nothing and reads nothing", async () => {
  const r = await rig({ closeTimeoutMs: 5_000 });
  const bus = await open(r);
  await bus.publishState(LINKED);
  await r.audio.waitMessage((m) => m.topic === "linkd/state");
  await until(() => r.proxy.seen.some((p) => p.type === "puback"), "the PUBACK");
  await realDelay(20);
  r.proxy.stall();
  let closed = false;
  const closing = bus.close().then(() => (closed = true));
  await realDelay(50);
  await r.clock.inner.advance(4_999);
  await realDelay(50);
  assert.not.ok(closed, "still waiting for the PUBACK of offline");
  await r.clock.inner.advance(1);
  await within(closing, "close()");
  assert.ok(r.logs.some((l) => l.includes("did not take the final state")), r.logs.join("\n"));
});

/** `p` within 3 s of real time, or the test fails (a publish that waits for a PUBACK hangs). */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what} did not settle`)), 3000);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

test.run();
