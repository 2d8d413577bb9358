/**
 * Reconnection against Debian's real mosquitto, stopped and started again on the same port.
 * linkd's delays run on a FakeClock (recorded), the sockets in real time; nothing asserts how
 * long anything took.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { JITTER } from "../auth/backoff.ts";
import type { AccessToken, LinkState } from "../contract.ts";
import { freePort, type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { prng } from "../../test/support/random.ts";
import {
  type Bus,
  BusError,
  type BusStatus,
  connectBus,
  RECONNECT_TABLE_S,
  STABLE_MS,
} from "./bus.ts";
import { Peer, realDelay, RecordingClock, TcpProxy } from "../../test/support/bus.ts";

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const LINKED: LinkState = { state: "linked", since: T0, scopes: ["alexa:all"] };
const TOKEN: AccessToken = {
  access_token: "Atza|reconnect",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_at: T0 + 3_600_000,
  expires_in: 3600,
};

const cleanups: (() => Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

async function broker(port?: number): Promise<Mosquitto> {
  const b = await startMosquitto(port === undefined ? {} : { port });
  cleanups.push(() => b.stop());
  return b;
}

/** Lets linkd's clock run from deadline to deadline until `done`, in at most 20 s real time. */
async function drive(clock: RecordingClock, done: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    const next = clock.inner.nextDeadline();
    if (next !== null) await clock.inner.advance(Math.max(0, next - clock.inner.monotonic()));
    await realDelay(20);
  }
}

function withinJitter(delays: number[]): void {
  delays.forEach((d, i) => {
    const base = RECONNECT_TABLE_S[Math.min(i, RECONNECT_TABLE_S.length - 1)]! * 1000;
    assert.ok(
      d >= base * (1 - JITTER) - 1 && d <= base * (1 + JITTER) + 1,
      `delay ${i} is ${d} ms: table ${base} ms ±${JITTER * 100} %`,
    );
  });
}

test("the bus reconnects with growing, jittered delays; retained topics and a token come back", async () => {
  let b = await broker();
  const port = b.port;
  const clock = new RecordingClock();
  const statuses: BusStatus[] = [];
  let reconnects = 0;
  let bus: Bus | null = null;
  bus = await connectBus({
    url: b.url,
    prefix: "linkd",
    clock,
    random: prng(7),
    onStatus: (s) => statuses.push(s),
    // the owner: a fresh state and a valid token after each reconnect
    onReconnect: () => {
      reconnects++;
      bus!.publishState({ ...LINKED, since: clock.now() }).catch(() => {});
      bus!.publishToken(TOKEN).catch(() => {});
    },
  });
  cleanups.push(() => bus!.close());
  await bus.publishState(LINKED);
  await bus.publishPairing(null);
  await bus.publishCapabilities({ granted: ["alexa:all"], denied: [] });

  await b.stop();
  await drive(clock, () => clock.sleeps.length >= 6, "six failed attempts");
  assert.is(reconnects, 0);
  assert.equal(statuses, ["connected", "reconnecting"]);
  withinJitter(clock.sleeps);
  assert.ok(clock.sleeps[5]! > clock.sleeps[0]!, `the delays grow: ${clock.sleeps}`);

  b = await broker(port);
  const audio = await Peer.open({ port });
  cleanups.push(() => audio.close());
  await audio.subscribe("linkd/#");
  await drive(clock, () => reconnects === 1, "onReconnect");
  assert.equal(statuses, ["connected", "reconnecting", "connected"]);
  withinJitter(clock.sleeps);

  const token = await audio.waitMessage((m) => m.topic === "linkd/token");
  assert.equal(token.cbor, TOKEN);
  // the broker restarted empty: the state, capabilities and the cleared pairing are replayed
  const late = await Peer.open({ port });
  cleanups.push(() => late.close());
  await late.subscribe("linkd/#");
  const got = await late.waitMessages(() => true, 2);
  await realDelay(200);
  assert.equal(late.messages().map((m) => m.topic).sort(), ["linkd/capabilities", "linkd/state"]);
  assert.equal(got.find((m) => m.topic === "linkd/state")!.cbor, { ...LINKED, since: clock.now() });
  assert.is(late.messages("linkd/token").length, 0, "the token is never retained");
});

test("connectBus() waits for a broker that is not up yet, and gives up when aborted", async () => {
  const port = freePort();
  const clock = new RecordingClock();
  const pending = connectBus({
    url: `mqtt://127.0.0.1:${port}`,
    prefix: "linkd",
    clock,
    random: prng(1),
  });
  let connected: Bus | null = null;
  pending.then((b) => (connected = b), () => {});
  await drive(clock, () => clock.sleeps.length >= 3, "three failed attempts");
  assert.is(connected, null);
  await broker(port);
  await drive(clock, () => connected !== null, "the first connection");
  cleanups.push(() => connected!.close());
  withinJitter(clock.sleeps);

  const ac = new AbortController();
  const clock2 = new RecordingClock();
  const never = connectBus({
    url: `mqtt://127.0.0.1:${freePort()}`,
    prefix: "linkd",
    clock: clock2,
    random: prng(2),
    signal: ac.signal,
  });
  await drive(clock2, () => clock2.sleeps.length >= 2, "two failed attempts");
  ac.abort();
  const e = await never.then(() => null, (e) => e);
  assert.ok(e instanceof BusError && e.code === "aborted", String(e));
  assert.is(clock2.inner.pending, 0, "no sleeper left behind");
});

test("the backoff starts over only after a connection stayed up for STABLE_MS", async () => {
  const b = await broker();
  const proxy = new TcpProxy(b.port);
  cleanups.push(() => proxy.close());
  const clock = new RecordingClock();
  let reconnects = 0;
  const bus = await connectBus({
    url: proxy.url,
    prefix: "linkd",
    clock,
    random: () => 0.5, // no jitter: the delays are the table's
    onReconnect: () => reconnects++,
  });
  cleanups.push(() => bus.close());
  const cutAndReconnect = async (n: number) => {
    proxy.cut();
    await drive(clock, () => reconnects === n, `reconnect ${n}`);
  };
  await cutAndReconnect(1);
  await cutAndReconnect(2); // dropped at once: not stable, the delays go on growing
  await clock.inner.advance(STABLE_MS);
  await cutAndReconnect(3); // stable for STABLE_MS: from the top again
  const s = RECONNECT_TABLE_S.map((x) => x * 1000);
  assert.equal(clock.sleeps, [s[0], s[1], s[0]]);
});

test.run();
