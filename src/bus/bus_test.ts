/**
 * The bus against Debian's real mosquitto, read by an independent subscriber (paho-mqtt MQTT 5,
 * decoding with cbor2): every payload type, retained flags, message expiry, clearing, last will.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type {
  AccessToken,
  Capabilities,
  Display,
  LinkState,
  PairingInfo,
  Say,
  Segment,
} from "../contract.ts";
import { type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { type Bus, BusError, type BusOptions, type BusStatus, connectBus } from "./bus.ts";
import { Peer, type PeerMessage, realDelay, TcpProxy, until } from "../../test/support/bus.ts";

const cleanups: (() => Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

async function broker(): Promise<Mosquitto> {
  const b = await startMosquitto();
  cleanups.push(() => b.stop());
  return b;
}

async function peer(port: number, topic = "linkd/#"): Promise<Peer> {
  const p = await Peer.open({ port });
  cleanups.push(() => p.close());
  assert.equal(await p.subscribe(topic, { rap: true }), [1]);
  return p;
}

interface Rig {
  bus: Bus;
  clock: FakeClock;
  logs: string[];
  statuses: BusStatus[];
}

async function bus(url: string, extra: Partial<BusOptions> = {}): Promise<Rig> {
  const clock = new FakeClock();
  const logs: string[] = [];
  const statuses: BusStatus[] = [];
  const b = await connectBus({
    url,
    prefix: "linkd",
    clock,
    random: () => 0.5,
    log: (l) => logs.push(l),
    onStatus: (s) => statuses.push(s),
    ...extra,
  });
  cleanups.push(() => b.close());
  return { bus: b, clock, logs, statuses };
}

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const STATE: LinkState = {
  state: "error",
  since: T0,
  scopes: ["alexa:all"],
  error: { code: "network", message: "Cannot reach the authorization server (refused)" },
};
const PAIRING: PairingInfo = {
  user_code: "K7QX2M",
  verification_uri: "http://127.0.0.1:8080/activate",
  verification_uri_complete: "http://127.0.0.1:8080/activate?code=K7QX2M",
  expires_at: T0 + 600_000,
  expires_in: 600,
  interval: 5,
};
const TOKEN: AccessToken = {
  access_token: "Atza|IwEBIJ-linkd-test-token",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_at: T0 + 3_600_000,
  expires_in: 3600,
};
const CAPS: Capabilities = {
  granted: ["alexa:all"],
  denied: [{ scope: "profile", reason: "unknown_scope" }],
};
const SAY: Say = {
  text: "Go to 1 2 7 dot 0 dot 0 dot 1 and enter K. 7. Q. X. 2. M.",
  lang: "en-US",
};
const SEGMENT: Segment = {
  digits: 4,
  kind: 7,
  frames: [[0x75, 0x07, 0x3f, 0x76], [0x07, 0x3f, 0x76, 0x5b]],
  frame_ms: 400,
};
const BITMAP = Uint8Array.from({ length: 1024 }, (_, i) => (i * 37) & 0xff);
const DISPLAY: Display = { width: 128, height: 64, bitmap: BITMAP };

async function publishAll(b: Bus): Promise<void> {
  await b.publishState(STATE);
  await b.publishPairing(PAIRING);
  await b.publishToken(TOKEN);
  await b.publishCapabilities(CAPS);
  await b.publishSay(SAY);
  await b.publishSegment(SEGMENT);
  await b.publishDisplay(DISPLAY);
}

function hexOf(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function only(p: Peer, topic: string): PeerMessage {
  const ms = p.messages(topic);
  assert.is(ms.length, 1, `one message on ${topic}`);
  return ms[0]!;
}

test("connectBus() publishes every topic as plain CBOR that cbor2 decodes, with its retain flag", async () => {
  const b = await broker();
  const { bus: linkd } = await bus(b.url);
  const sub = await peer(b.port);
  await publishAll(linkd);
  await sub.waitMessages(() => true, 7);

  const state = only(sub, "linkd/state");
  assert.equal(state.cbor, STATE);
  assert.equal(state.shape, {
    state: "str",
    since: "int",
    scopes: ["str"],
    error: { code: "str", message: "str" },
  });
  assert.is(state.retain, true);

  const pairing = only(sub, "linkd/pairing");
  assert.equal(pairing.cbor, PAIRING);
  assert.equal(pairing.shape, {
    user_code: "str",
    verification_uri: "str",
    verification_uri_complete: "str",
    expires_at: "int",
    expires_in: "int",
    interval: "int",
  });
  assert.is(pairing.retain, true);

  const token = only(sub, "linkd/token");
  assert.equal(token.cbor, TOKEN);
  assert.equal(token.shape, {
    access_token: "str",
    token_type: "str",
    scopes: ["str"],
    expires_at: "int",
    expires_in: "int",
  });
  assert.is(token.retain, false);
  assert.is(token.qos, 1);
  assert.ok(
    token.expiry !== null && token.expiry <= 3600 && token.expiry >= 3590,
    `message expiry ${token.expiry} is the seconds left`,
  );

  const caps = only(sub, "linkd/capabilities");
  assert.equal(caps.cbor, CAPS);
  assert.equal(caps.shape, { granted: ["str"], denied: [{ scope: "str", reason: "str" }] });
  assert.is(caps.retain, true);

  const say = only(sub, "linkd/say");
  assert.equal(say.cbor, SAY);
  assert.equal(say.shape, { text: "str", lang: "str" });
  assert.is(say.retain, false);

  const seg = only(sub, "linkd/segment");
  assert.equal(seg.cbor, SEGMENT);
  assert.equal(seg.shape, {
    digits: "int",
    kind: "int",
    frames: [["int", "int", "int", "int"], ["int", "int", "int", "int"]],
    frame_ms: "int",
  });
  assert.is(seg.retain, true);

  const disp = only(sub, "linkd/display");
  assert.equal(disp.cbor, { width: 128, height: 64, bitmap: { $bytes: hexOf(BITMAP) } });
  assert.equal(disp.shape, { width: "int", height: "int", bitmap: "bytes" });
  assert.is(disp.retain, true);

  for (const m of sub.messages()) {
    assert.is(m.cbor_error, undefined, `${m.topic} decodes`);
    assert.is(m.qos, 1, `${m.topic} is QoS 1`);
    if (m.topic !== "linkd/token") assert.is(m.expiry, null, `${m.topic} has no expiry`);
  }
});

test("a late subscriber gets state, pairing, capabilities, segment and display, never token or say", async () => {
  const b = await broker();
  const { bus: linkd } = await bus(b.url);
  await publishAll(linkd);
  const late = await peer(b.port);
  const got = await late.waitMessages(() => true, 5);
  assert.equal(got.map((m) => m.topic).sort(), [
    "linkd/capabilities",
    "linkd/display",
    "linkd/pairing",
    "linkd/segment",
    "linkd/state",
  ]);
  for (const m of got) assert.is(m.retain, true, `${m.topic} comes as retained`);
  assert.equal(late.messages("linkd/pairing")[0]!.cbor, PAIRING);
  // A transient message would have come with the retained ones, before any later one.
  await linkd.publishState({ ...STATE, state: "linked" });
  await late.waitMessage((m) => m.topic === "linkd/state", 2);
  assert.is(late.messages("linkd/token").length, 0);
  assert.is(late.messages("linkd/say").length, 0);
});

test("publishPairing(null), publishSegment(null), publishDisplay(null) clear with an empty retained payload", async () => {
  const b = await broker();
  const { bus: linkd } = await bus(b.url);
  await publishAll(linkd);
  const sub = await peer(b.port);
  await sub.waitMessages(() => true, 5);
  await linkd.publishPairing(null);
  await linkd.publishSegment(null);
  await linkd.publishDisplay(null);
  for (const t of ["linkd/pairing", "linkd/segment", "linkd/display"]) {
    const m = await sub.waitMessage((m) => m.topic === t, 2);
    assert.is(m.hex, "", `${t} cleared with an empty payload`);
    assert.is(m.retain, true, `${t} cleared retained`);
  }
  const late = await peer(b.port);
  await late.waitMessages(() => true, 2);
  await realDelay(200);
  assert.equal(late.messages().map((m) => m.topic).sort(), ["linkd/capabilities", "linkd/state"]);
});

test("the last will: offline, retained, when linkd's connection drops without DISCONNECT", async () => {
  const b = await broker();
  const proxy = new TcpProxy(b.port);
  cleanups.push(() => proxy.close());
  const { bus: linkd, clock, statuses } = await bus(proxy.url);
  await linkd.publishState({ state: "linked", since: T0, scopes: ["alexa:all"] });
  const sub = await peer(b.port);
  await sub.waitMessage((m) => m.topic === "linkd/state");
  proxy.cut();
  const will = await sub.waitMessage((m) => m.topic === "linkd/state", 2);
  assert.equal(will.cbor, { state: "offline", since: clock.now(), scopes: [] });
  assert.equal(will.shape, { state: "str", since: "int", scopes: [] });
  assert.is(will.retain, true);
  await until(() => statuses.includes("reconnecting"), "the bus to notice");
  const late = await peer(b.port);
  const kept = await late.waitMessage((m) => m.topic === "linkd/state");
  assert.is((kept.cbor as { state: string }).state, "offline", "the will stays retained");
});

test("close() publishes offline (or the state given), then disconnects without the will", async () => {
  const b = await broker();
  const { bus: linkd, clock, statuses } = await bus(b.url);
  const sub = await peer(b.port);
  await linkd.publishState({ state: "linked", since: T0, scopes: ["alexa:all"] });
  await clock.advance(5_000);
  await linkd.close();
  const off = await sub.waitMessage((m) => m.topic === "linkd/state", 2);
  assert.equal(off.cbor, { state: "offline", since: clock.now(), scopes: [] });
  assert.is(off.retain, true);
  await realDelay(300);
  assert.is(sub.messages("linkd/state").length, 2, "no will after a clean DISCONNECT");
  assert.equal(statuses, ["connected", "offline"]);
  // after close, publishing is a no-op and close again resolves
  await linkd.publishState(STATE);
  await linkd.close();
  assert.ok((await b.log()).includes("disconnected"), "a clean DISCONNECT");

  const second = await bus(b.url);
  const given: LinkState = {
    state: "offline",
    since: T0 + 1,
    scopes: [],
    error: { code: "x", message: "y" },
  };
  await second.bus.close(given);
  const last = await sub.waitMessage((m) => m.topic === "linkd/state", 3);
  assert.equal(last.cbor, given);
});

test("close() gives up on a broker that does not answer, and the will says offline", async () => {
  const b = await broker();
  const proxy = new TcpProxy(b.port);
  cleanups.push(() => proxy.close());
  const { bus: linkd, clock, logs, statuses } = await bus(proxy.url, { closeTimeoutMs: 4_000 });
  await linkd.publishState({ state: "linked", since: T0, scopes: [] });
  const sub = await peer(b.port);
  await sub.waitMessage((m) => m.topic === "linkd/state");
  proxy.freeze();
  let closed = false;
  const closing = linkd.close().then(() => (closed = true));
  await realDelay(100);
  await clock.advance(3_999);
  await realDelay(100);
  assert.is(closed, false, "still waiting for the PUBACK");
  await clock.advance(1);
  await closing;
  assert.ok(logs.some((l) => l.includes("did not take the final state")), logs.join("\n"));
  assert.equal(statuses, ["connected", "offline"]);
  proxy.cut();
  const will = await sub.waitMessage((m) => m.topic === "linkd/state", 2);
  assert.is((will.cbor as LinkState).state, "offline");
});

test("publishToken() leaves out an expired token; nothing is logged with a secret in it", async () => {
  const b = await broker();
  const { bus: linkd, logs } = await bus(b.url, { username: "linkd", password: "pw-secret-42" });
  const sub = await peer(b.port);
  await linkd.publishToken({ ...TOKEN, expires_in: 0 });
  await linkd.publishToken({ ...TOKEN, access_token: "second", expires_in: 90 });
  const m = await sub.waitMessage((m) => m.topic === "linkd/token");
  assert.is((m.cbor as AccessToken).access_token, "second");
  assert.ok(m.expiry !== null && m.expiry <= 90 && m.expiry >= 85);
  await linkd.close();
  assert.ok(logs.length > 0);
  for (const l of logs) {
    assert.not.ok(l.includes("pw-secret-42"), l);
    assert.not.ok(l.includes("Atza|") || l.includes("second"), l);
  }
});

test("connectBus() refuses an empty reconnect table as a caller's mistake, at once (no loop that never settles)", async () => {
  let error: unknown;
  try {
    await bus("mqtt://127.0.0.1:9", { reconnectTableS: [] });
  } catch (e) {
    error = e;
  }
  assert.instance(error, TypeError);
  assert.is((error as { code?: string }).code, "ERR_INVALID_ARG_VALUE");
  assert.match((error as Error).message, /Backoff table must not be empty/);
});

test("a broker that cannot take linkd's retained QoS 1 will refuses it for good: connectBus rejects, it does not retry for ever", async () => {
  for (const [config, rc] of [["retain_available false", 0x9a], ["max_qos 0", 0x9b]] as const) {
    const b = await startMosquitto({ config });
    cleanups.push(() => b.stop());
    const e = await connectBus({
      url: b.url,
      prefix: "linkd",
      clock: new FakeClock(),
      random: () => 0.5,
    }).then(() => null, (x: unknown) => x);
    assert.ok(e instanceof BusError, `${config}: ${String(e)}`);
    assert.is(e.code, "refused");
    assert.is(e.reasonCode, rc, config);
  }
});

test("a publish the broker refuses as too large (PUBACK 0x95) costs that message only, not the connection", async () => {
  const b = await startMosquitto({ config: "message_size_limit 200" });
  cleanups.push(() => b.stop());
  const statuses: BusStatus[] = [];
  const lines: string[] = [];
  const bus = await connectBus({
    url: b.url,
    prefix: "linkd",
    clock: new FakeClock(),
    random: () => 0.5,
    onStatus: (s) => statuses.push(s),
    log: (l) => lines.push(l),
  });
  cleanups.push(() => bus.close());
  const watcher = await peer(b.port);
  await bus.publishDisplay({ width: 64, height: 32, bitmap: new Uint8Array(256) });
  await bus.publishState({ state: "linked", since: 1, scopes: [] });
  const state = await watcher.waitFor((es) =>
    es.find((e) => e.ev === "message" && (e as unknown as PeerMessage).topic === "linkd/state")
  );
  assert.ok(state, "a later publish still goes through");
  await realDelay(300);
  assert.equal(statuses, ["connected"], "never reconnected");
  assert.ok(lines.some((l) => l.includes("refused a publish to linkd/display")), lines.join("\n"));
});

test.run();
