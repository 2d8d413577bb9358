/**
 * MqttClient against a scripted broker on 127.0.0.1 that reads the client's packets and writes
 * crafted bytes: malformed and hostile packets, the broker's limits (Receive Maximum, Maximum
 * Packet Size, Maximum QoS, Retain Available, Server Keep Alive), timeouts on fake timers, and
 * that the password never shows in an error.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MqttError } from "./errors.ts";
import { MqttClient } from "./client.ts";
import type { ConnectOptions, IncomingMessage } from "./types.ts";
import {
  assertNoSecret,
  bytes,
  FakeBroker,
  type FakeConn,
  FakeTimers,
  hex,
  realDelay,
  rejection,
  text,
  within,
} from "../../../test/support/mqtt.ts";
import type { Properties } from "./properties.ts";

const PASSWORD = "pw-7f3a-DO-NOT-LEAK";
const SECRET_PAYLOAD = "payload-4b1d-DO-NOT-LEAK";

// A failed test leaves publishes waiting; the cleanup's destroy() rejects them. Let that one
// failure be reported as itself rather than crash the file.
globalThis.addEventListener("unhandledrejection", (e) => {
  if (e.reason instanceof MqttError && e.reason.code === "closed") e.preventDefault();
});

const cleanups: (() => void | Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

interface Rig {
  broker: FakeBroker;
  conn: FakeConn;
  timers: FakeTimers;
  connecting: Promise<MqttClient>;
  messages: IncomingMessage[];
}

async function rig(o: Partial<ConnectOptions> = {}): Promise<Rig> {
  const broker = new FakeBroker();
  cleanups.push(() => broker.close());
  const timers = new FakeTimers();
  const messages: IncomingMessage[] = [];
  const connecting = MqttClient.connect({
    url: broker.url,
    protocolVersion: 5,
    clientId: "linkd-test",
    keepaliveS: 60,
    username: "linkd",
    password: PASSWORD,
    timers,
    onMessage: (m) => messages.push(m),
    ...o,
  });
  connecting.then((c) => cleanups.push(() => c.destroy()), () => {});
  const conn = await broker.next();
  return { broker, conn, timers, connecting, messages };
}

/** A rig past CONNACK (with `props`). */
async function connected(
  props: Properties = {},
  o: Partial<ConnectOptions> = {},
): Promise<Rig & { client: MqttClient }> {
  const r = await rig(o);
  await r.conn.accept(props);
  return { ...r, client: await within(r.connecting) };
}

/** Polls `cond` in real time (the client works on real sockets). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 3000;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await realDelay(2);
  }
}

function isMqttError(e: unknown, code: string, reasonCode?: number): asserts e is MqttError {
  assert.instance(e, MqttError, String(e));
  assert.is((e as MqttError).code, code, (e as MqttError).message);
  if (reasonCode !== undefined) assert.is((e as MqttError).reasonCode, reasonCode);
  assertNoSecret(e, PASSWORD);
  assertNoSecret(e, SECRET_PAYLOAD);
}

/** The client must end with DISCONNECT `rc` (v5) and close; nothing else after. */
async function expectDisconnect(conn: FakeConn, rc: number): Promise<void> {
  const rest = await conn.ended();
  const rcHex = rc.toString(16).padStart(2, "0");
  assert.equal(rest.map(hex), [rc === 0 ? "e0 00" : `e0 01 ${rcHex}`]);
}

const PUBLISH_QOS1_ID7 = bytes("32 08 00 03 61 2f 62 00 07 00"); // v5, "a/b", id 7, no properties

// ── connecting ────────────────────────────────────────────────────────────────────────────

test("connect() sends the CONNECT its options describe, and resolves on CONNACK", async () => {
  const r = await rig({
    will: {
      topic: "linkd/state",
      payload: text("offline"),
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 60 },
    },
    maximumPacketSize: 4096,
  });
  const connect = await r.conn.accept({ receiveMaximum: 5, assignedClientIdentifier: "x" });
  assert.equal(connect, {
    type: "connect",
    protocolVersion: 5,
    clientId: "linkd-test",
    cleanStart: true,
    keepalive: 60,
    username: "linkd",
    password: text(PASSWORD),
    will: {
      topic: "linkd/state",
      payload: text("offline"),
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 60 },
    },
    properties: { maximumPacketSize: 4096 },
  });
  const c = await r.connecting;
  assert.ok(c.connected);
  assert.is(c.protocolVersion, 5);
  assert.equal(c.connack, {
    sessionPresent: false,
    reasonCode: 0,
    properties: { receiveMaximum: 5, assignedClientIdentifier: "x" },
  });
});

test("connect() with MQTT 3.1.1 sends no properties, not even the will's", async () => {
  const r = await rig({
    protocolVersion: 4,
    will: {
      topic: "w",
      payload: text("x"),
      qos: 0,
      retain: false,
      properties: { contentType: "t" },
    },
  });
  r.conn.version = 4;
  const connect = await r.conn.accept();
  assert.is(connect.protocolVersion, 4);
  assert.equal(connect.properties, {});
  assert.equal(connect.will?.properties, {});
  assert.ok((await r.connecting).connected);
});

test("connect() rejects a malformed CONNACK with protocol 0x81 and tells the broker", async () => {
  const r = await rig();
  await r.conn.expect("connect");
  await r.conn.write(bytes("20 03 00 00 05")); // property length 5, no properties
  const e = await rejection(r.connecting);
  isMqttError(e, "protocol", 0x81);
  assert.is(e.reason, "truncated");
  await expectDisconnect(r.conn, 0x81);
});

test("connect() rejects a CONNACK with session present after a clean start (0x82)", async () => {
  const r = await rig();
  await r.conn.expect("connect");
  await r.conn.write(bytes("20 03 01 00 00"));
  isMqttError(await rejection(r.connecting), "protocol", 0x82);
  await expectDisconnect(r.conn, 0x82);
});

test("connect() rejects anything but CONNACK first (0x82)", async () => {
  const r = await rig();
  await r.conn.expect("connect");
  await r.conn.write(bytes("d0 00"));
  const e = await rejection(r.connecting);
  isMqttError(e, "protocol", 0x82);
  assert.is(e.reason, "unexpected_packet");
});

test("connect() rejects a refusal with code refused and its reason code", async () => {
  const r = await rig();
  await r.conn.expect("connect");
  await r.conn.write(bytes("20 03 00 86 00"));
  const e = await rejection(r.connecting);
  isMqttError(e, "refused", 0x86);
  assert.match(e.message, "bad user name or password");
  assert.equal((await r.conn.ended()).length, 0, "no DISCONNECT after a refusal");
});

test("connect() with MQTT 5 reports an MQTT 3.1.1 broker's refusal as refused", async () => {
  const r = await rig();
  await r.conn.expect("connect");
  await r.conn.write(bytes("20 02 00 01")); // what aedes answers to an MQTT 5 CONNECT
  const e = await rejection(r.connecting);
  isMqttError(e, "refused", 1);
  assert.match(e.message, "MQTT 3.1.1 broker (1 unacceptable protocol version)");
  assert.equal(await r.conn.ended(), [], "no DISCONNECT");
});

test("connect() rejects an MQTT 3.1.1 refusal (return code 5)", async () => {
  const r = await rig({ protocolVersion: 4 });
  r.conn.version = 4;
  await r.conn.expect("connect");
  await r.conn.write(bytes("20 02 00 05"));
  isMqttError(await rejection(r.connecting), "refused", 5);
});

test("connect() times out on the injected timers when no CONNACK comes", async () => {
  const r = await rig({ connectTimeoutMs: 2500 });
  await r.conn.expect("connect");
  assert.equal(r.timers.pending, [2500]);
  r.timers.advance(2499);
  await realDelay(20);
  r.timers.advance(1);
  const e = await rejection(r.connecting);
  isMqttError(e, "timeout");
  assert.equal(await r.conn.ended(), []);
  assert.equal(r.timers.pending, []);
});

test("connect() rejects with aborted when the signal aborts before CONNACK", async () => {
  const ac = new AbortController();
  const r = await rig({ signal: ac.signal });
  await r.conn.expect("connect");
  ac.abort();
  isMqttError(await rejection(r.connecting), "aborted");
  assert.equal(await r.conn.ended(), []);
  assert.equal(r.timers.pending, []);
  // Aborted already: rejected at once, nothing opened.
  const again = MqttClient.connect({
    url: r.broker.url,
    protocolVersion: 5,
    clientId: "c",
    keepaliveS: 0,
    password: PASSWORD,
    signal: ac.signal,
  });
  isMqttError(await rejection(again), "aborted");
});

test("connect() ignores the signal after CONNACK", async () => {
  const ac = new AbortController();
  const { client } = await connected({}, { signal: ac.signal });
  ac.abort();
  await realDelay(10);
  assert.ok(client.connected);
});

test("connect() rejects with network and the Deno error when nothing listens", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const e = await rejection(
    MqttClient.connect({
      url: `mqtt://127.0.0.1:${port}`,
      protocolVersion: 5,
      clientId: "c",
      keepaliveS: 0,
      username: "u",
      password: PASSWORD,
    }),
  );
  isMqttError(e, "network");
  assert.instance(e.cause, Deno.errors.ConnectionRefused);
});

test("connect() rejects with network when the broker hangs up before CONNACK", async () => {
  const r = await rig();
  await r.conn.expect("connect");
  r.conn.close();
  isMqttError(await rejection(r.connecting), "network");
});

test("connect() throws a TypeError for a wrong option, never echoing it", async () => {
  const base: ConnectOptions = {
    url: "mqtt://127.0.0.1:1",
    protocolVersion: 5,
    clientId: "c",
    keepaliveS: 0,
    password: PASSWORD,
  };
  const wrong: Partial<Record<keyof ConnectOptions, unknown>>[] = [
    { url: `mqtt://u:${PASSWORD}@127.0.0.1` },
    { url: "http://127.0.0.1" },
    { protocolVersion: 3 },
    { keepaliveS: 65_536 },
    { keepaliveS: -1 },
    { clientId: "a\u0000b" },
    { password: `${PASSWORD}\ud800` },
    { protocolVersion: 4 }, // a password without a username
    { maximumPacketSize: 10 },
    { will: { topic: "a/#", payload: new Uint8Array(0), qos: 0, retain: false } },
    { will: { topic: "a", payload: new Uint8Array(70_000), qos: 0, retain: false } },
    { will: { topic: "a", payload: new Uint8Array(0), qos: 2, retain: false } },
    { connectTimeoutMs: 0 },
    { ackTimeoutMs: 0 },
    { ackTimeoutMs: 1.5 },
  ];
  for (const w of wrong) {
    const e = await rejection(MqttClient.connect({ ...base, ...w } as ConnectOptions));
    assert.instance(e, TypeError, JSON.stringify(w));
    assert.is((e as { code?: string }).code, "ERR_INVALID_ARG_VALUE");
    assertNoSecret(e, PASSWORD);
  }
});

// ── hostile packets after CONNACK ─────────────────────────────────────────────────────────

test("an incoming packet over maximumPacketSize closes with 0x95 before its body", async () => {
  const { client, conn, messages } = await connected({}, { maximumPacketSize: 256 });
  await conn.write(bytes("30 ff 01")); // a PUBLISH of 258 bytes announced; no body sent
  isMqttError(await within(client.closed), "protocol", 0x95);
  await expectDisconnect(conn, 0x95);
  assert.is(messages.length, 0);
  assert.not.ok(client.connected);
});

test("a packet of exactly maximumPacketSize is accepted", async () => {
  const { conn, messages } = await connected({}, { maximumPacketSize: 256 });
  // 3 bytes of header + 253: topic "t" (3), properties (1), payload 249.
  const p = new Uint8Array(256);
  p.set(bytes("30 fd 01 00 01 74 00"));
  await conn.write(p);
  await until(() => messages.length === 1, "the message");
  assert.is(messages[0]!.payload.length, 249);
});

test("an incoming Topic Alias closes with 0x94 (none was allowed)", async () => {
  const { client, conn, messages } = await connected();
  await conn.write(bytes("30 09 00 03 61 2f 62 03 23 00 01"));
  const e = await within(client.closed);
  isMqttError(e, "protocol", 0x94);
  assert.is(e.reason, "topic_alias");
  await expectDisconnect(conn, 0x94);
  assert.is(messages.length, 0);
});

test("an incoming QoS 2 PUBLISH closes with 0x82", async () => {
  const { client, conn, messages } = await connected();
  await conn.write(bytes("34 08 00 03 61 2f 62 00 01 00"));
  isMqttError(await within(client.closed), "protocol", 0x82);
  await expectDisconnect(conn, 0x82);
  assert.is(messages.length, 0);
});

test("a PUBLISH with a wildcard topic closes with 0x90, invalid UTF-8 with 0x81", async () => {
  const a = await connected();
  await a.conn.write(bytes("30 06 00 03 61 2f 2b 00"));
  isMqttError(await within(a.client.closed), "protocol", 0x90);
  const b = await connected();
  await b.conn.write(bytes("30 06 00 03 61 c0 af 00"));
  const e = await within(b.client.closed);
  isMqttError(e, "protocol", 0x81);
  assert.is(e.reason, "invalid_utf8");
});

test("a PUBACK for a packet identifier not in flight closes with 0x82", async () => {
  const { client, conn } = await connected();
  await conn.write(bytes("40 02 00 09"));
  const e = await within(client.closed);
  isMqttError(e, "protocol", 0x82);
  assert.is(e.reason, "unknown_packet_id");
});

test("a second CONNACK, or a PINGREQ from the broker, closes with 0x82", async () => {
  for (const h of ["20 03 00 00 00", "c0 00"]) {
    const { client, conn } = await connected();
    await conn.write(bytes(h));
    isMqttError(await within(client.closed), "protocol", 0x82);
    await expectDisconnect(conn, 0x82);
  }
});

test("with MQTT 3.1.1 a protocol error closes without DISCONNECT (the will still goes)", async () => {
  const r = await rig({ protocolVersion: 4, maximumPacketSize: 128 });
  r.conn.version = 4;
  await r.conn.accept();
  const client = await r.connecting;
  await r.conn.write(bytes("e0 00")); // a DISCONNECT: no broker may send one in 3.1.1
  const e = await within(client.closed);
  isMqttError(e, "protocol", 0x82);
  assert.equal(await r.conn.ended(), []);
});

test("a packet split into single bytes is read like a whole one", async () => {
  const { conn, messages } = await connected();
  const p = bytes("31 0e 00 03 61 2f 62 05 02 00 00 00 2a 68 69 21");
  for (const b of p) {
    await conn.write(new Uint8Array([b]));
    await realDelay(0);
  }
  await until(() => messages.length === 1, "the message");
  assert.equal(messages[0], {
    topic: "a/b",
    payload: text("hi!"),
    qos: 0,
    retain: true,
    dup: false,
    properties: { messageExpiryInterval: 42 },
  });
});

// ── messages ──────────────────────────────────────────────────────────────────────────────

test("incoming QoS 1 messages reach onMessage in order, each PUBACKed after it", async () => {
  const order: string[] = [];
  const { conn } = await connected({}, {
    onMessage: (m) => order.push(`message ${m.topic}`),
  });
  const one = bytes("32 0d 00 01 31 00 01 05 09 00 02 ab cd 68 69"); // "1", id 1, correlation
  const two = bytes("3a 07 00 01 32 00 02 00 21"); // "2", id 2, DUP
  await conn.write(new Uint8Array([...one, ...two]));
  const a1 = await conn.expect("puback");
  order.push(`puback ${a1.packetId}`);
  const a2 = await conn.expect("puback");
  order.push(`puback ${a2.packetId}`);
  assert.equal(order, ["message 1", "message 2", "puback 1", "puback 2"]);
  assert.equal(conn.received.slice(-8), [...bytes("40 02 00 01 40 02 00 02")]);
});

test("an onMessage that throws goes to onHandlerError; the message is still acknowledged", async () => {
  const errors: unknown[] = [];
  const { client, conn } = await connected({}, {
    onMessage: () => {
      throw new Error("handler broke");
    },
    onHandlerError: (e) => errors.push(e),
  });
  await conn.write(PUBLISH_QOS1_ID7);
  assert.is((await conn.expect("puback")).packetId, 7);
  assert.is(errors.length, 1);
  assert.ok(client.connected);
});

test("an incoming message keeps its properties", async () => {
  const { conn, messages } = await connected();
  await conn.write({
    type: "publish",
    topic: "linkd/cmd/token",
    payload: text(SECRET_PAYLOAD),
    qos: 0,
    retain: false,
    dup: false,
    packetId: 0,
    properties: {
      responseTopic: "linkd/reply/audio/1",
      correlationData: bytes("01 02"),
      contentType: "application/cbor",
      payloadFormatIndicator: 0,
      userProperties: [["a", "b"]],
      messageExpiryInterval: 9,
      subscriptionIdentifiers: [3],
    },
  });
  await until(() => messages.length === 1, "the message");
  assert.equal(messages[0]!.properties, {
    responseTopic: "linkd/reply/audio/1",
    correlationData: bytes("01 02"),
    contentType: "application/cbor",
    payloadFormatIndicator: 0,
    userProperties: [["a", "b"]],
    messageExpiryInterval: 9,
  });
});

// ── publishing and the broker's limits ────────────────────────────────────────────────────

test("publish() QoS 1 resolves with the PUBACK reason code, 0x87 included", async () => {
  const { client, conn } = await connected();
  const p1 = client.publish("a/b", text("x"), { qos: 1 });
  const s1 = await conn.expect("publish");
  const p2 = client.publish("a/c", text("y"), { qos: 1, retain: true });
  const s2 = await conn.expect("publish");
  assert.is.not(s1.packetId, s2.packetId);
  assert.ok(s2.retain);
  await conn.write({ type: "puback", packetId: s2.packetId, reasonCode: 0x87, properties: {} });
  await conn.write({ type: "puback", packetId: s1.packetId, reasonCode: 0, properties: {} });
  assert.is(await within(p1), 0);
  assert.is(await within(p2), 0x87);
});

test("a PUBACK failure code the spec does not list (mosquitto's 0x95) fails that publish only", async () => {
  const { client, conn } = await connected();
  const p1 = client.publish("a/b", text("x"), { qos: 1, retain: true });
  const s1 = await conn.expect("publish");
  await conn.write({ type: "puback", packetId: s1.packetId, reasonCode: 0x95, properties: {} });
  assert.is(await within(p1), 0x95);
  assert.ok(client.connected, "the connection stays up");
  const p2 = client.publish("a/b", text("y"), { qos: 1 });
  const s2 = await conn.expect("publish");
  await conn.write({ type: "puback", packetId: s2.packetId, reasonCode: 0, properties: {} });
  assert.is(await within(p2), 0);
});

test("publish() waits for a slot when the broker's Receive Maximum is 1", async () => {
  const { client, conn } = await connected({ receiveMaximum: 1 });
  const p1 = client.publish("q/1", text("1"), { qos: 1 });
  const p2 = client.publish("q/2", text("2"), { qos: 1 });
  const q0 = client.publish("q/0", text("0"), { qos: 0 }); // QoS 0 does not wait
  const s1 = await conn.expect("publish");
  assert.is(s1.topic, "q/1");
  assert.is((await conn.expect("publish")).topic, "q/0");
  assert.is(await within(q0), 0);
  await conn.silentFor(100);
  await conn.write({ type: "puback", packetId: s1.packetId, reasonCode: 0, properties: {} });
  const s2 = await conn.expect("publish");
  assert.is(s2.topic, "q/2");
  await conn.write({ type: "puback", packetId: s2.packetId, reasonCode: 0x10, properties: {} });
  assert.equal(await within(Promise.all([p1, p2])), [0, 0x10]);
});

test("publish() rejects too_large beyond the broker's Maximum Packet Size; nothing is sent", async () => {
  const { client, conn } = await connected({ maximumPacketSize: 64 });
  const e = await rejection(client.publish("a/b", text(SECRET_PAYLOAD.repeat(4)), { qos: 1 }));
  isMqttError(e, "too_large");
  await conn.silentFor(50);
  assert.ok(client.connected);
  const ok = client.publish("a/b", text("small"), { qos: 1 });
  const s = await conn.expect("publish");
  assert.equal(s.payload, text("small"));
  await conn.write({ type: "puback", packetId: s.packetId, reasonCode: 0, properties: {} });
  assert.is(await within(ok), 0);
});

test("publish() rejects unsupported for retain when Retain Available is 0", async () => {
  const { client, conn } = await connected({ retainAvailable: false });
  isMqttError(
    await rejection(client.publish("a", text("x"), { qos: 1, retain: true })),
    "unsupported",
  );
  await conn.silentFor(30);
  assert.ok(client.connected);
});

test("publish() sends QoS 0 when the broker's Maximum QoS is 0", async () => {
  const { client, conn } = await connected({ maximumQoS: 0 });
  assert.is(await within(client.publish("a", text("x"), { qos: 1 })), 0);
  const s = await conn.expect("publish");
  assert.is(s.qos, 0);
});

test("publish() sends the MQTT 5 properties, and none with MQTT 3.1.1", async () => {
  const properties = {
    messageExpiryInterval: 3600,
    responseTopic: "r/1",
    correlationData: bytes("00 ff"),
    contentType: "application/cbor",
    payloadFormatIndicator: 0 as const,
    userProperties: [["k", "v"]] as [string, string][],
  };
  const { client, conn } = await connected();
  void client.publish("a", text("x"), { qos: 0, properties });
  assert.equal((await conn.expect("publish")).properties, properties);
  const r = await rig({ protocolVersion: 4 });
  r.conn.version = 4;
  await r.conn.accept();
  const c4 = await r.connecting;
  void c4.publish("a", text("x"), { qos: 0, properties });
  assert.equal((await r.conn.expect("publish")).properties, {});
});

test("publish() refuses a wildcard or NUL topic, a bad QoS and a lone surrogate with TypeErrors", async () => {
  const { client, conn } = await connected();
  for (
    const [t, o] of [
      ["a/+", { qos: 0 }],
      ["a\u0000b", { qos: 0 }], // U+0000 has no place in a Topic Name (MQTT 5 section 4.7.3)
      ["", { qos: 0 }],
      ["a", { qos: 2 }],
      ["a\ud800", { qos: 0 }],
      ["a", { qos: 0, properties: { responseTopic: "r/#" } }],
      ["a", { qos: 0, properties: { messageExpiryInterval: -1 } }],
    ] as const
  ) {
    assert.instance(await rejection(client.publish(t, text("x"), o as never)), TypeError, t);
  }
  await conn.silentFor(20);
});

test("many concurrent publishes go out whole and in order", async () => {
  const { client, conn } = await connected({ receiveMaximum: 1000 });
  const sizes = Array.from({ length: 60 }, (_, i) => (i * 997) % 20_000);
  const all = sizes.map((n, i) =>
    client.publish(`t/${i}`, new Uint8Array(n).fill(i), { qos: (i % 2) as 0 | 1 })
  );
  for (let i = 0; i < sizes.length; i++) {
    const p = await conn.expect("publish");
    assert.is(p.topic, `t/${i}`);
    assert.is(p.payload.length, sizes[i]);
    assert.ok(p.payload.every((b) => b === (i & 0xff)));
    if (p.qos === 1) {
      await conn.write({ type: "puback", packetId: p.packetId, reasonCode: 0, properties: {} });
    }
  }
  assert.ok((await within(Promise.all(all))).every((rc) => rc === 0));
});

test("subscribe() sends the options and resolves with the SUBACK reason codes", async () => {
  const { client, conn } = await connected();
  const done = client.subscribe("linkd/cmd/+", {
    qos: 1,
    noLocal: true,
    retainAsPublished: true,
    retainHandling: 1,
  });
  const s = await conn.expect("subscribe");
  assert.equal(s.subscriptions, [{
    filter: "linkd/cmd/+",
    qos: 1,
    noLocal: true,
    retainAsPublished: true,
    retainHandling: 1,
  }]);
  await conn.write({ type: "suback", packetId: s.packetId, reasonCodes: [0x87], properties: {} });
  assert.equal(await within(done), [0x87]);
  assert.instance(await rejection(client.subscribe("a/#/b", { qos: 0 })), TypeError);
  assert.instance(await rejection(client.subscribe("a+", { qos: 0 })), TypeError);
});

test("a SUBACK granting more than the QoS asked for closes with a protocol error", async () => {
  const { client, conn } = await connected();
  const done = rejection(client.subscribe("a", { qos: 0 }));
  const s = await conn.expect("subscribe");
  await conn.write({ type: "suback", packetId: s.packetId, reasonCodes: [1], properties: {} });
  isMqttError(await done, "closed");
  isMqttError(await within(client.closed), "protocol");
});

// ── deadlines ─────────────────────────────────────────────────────────────────────────────

test("a SUBACK that never comes closes with timeout after ackTimeoutMs, naming SUBACK and the id", async () => {
  const { client, conn, timers } = await connected({}, { ackTimeoutMs: 10_000 });
  const done = rejection(client.subscribe("linkd/cmd/+", { qos: 1 }));
  const s = await conn.expect("subscribe");
  timers.advance(9_999);
  await realDelay(20);
  assert.ok(client.connected);
  timers.advance(1);
  const e = await within(client.closed);
  isMqttError(e, "timeout");
  assert.match(e.message, `no SUBACK for packet ${s.packetId} within 10 s`);
  isMqttError(await done, "closed");
  assert.equal(await conn.ended(), [], "no DISCONNECT: the broker has stalled");
  assert.equal(timers.pending, [], "no timer left behind");
});

test("a PUBACK that never comes closes with timeout naming PUBACK and the id; later publishes still go", async () => {
  const { client, conn, timers } = await connected({}, { ackTimeoutMs: 10_000 });
  const first = rejection(client.publish("a", text("1"), { qos: 1 }));
  const p1 = await conn.expect("publish");
  timers.advance(5_000);
  const second = client.publish("b", text("2"), { qos: 1 });
  const p2 = await conn.expect("publish"); // not held back by the first one's missing PUBACK
  assert.is.not(p2.packetId, p1.packetId);
  await conn.write({ type: "puback", packetId: p2.packetId, reasonCode: 0, properties: {} });
  assert.is(await within(second), 0);
  timers.advance(4_999);
  await realDelay(20);
  assert.ok(client.connected, "the second PUBACK does not move the first one's deadline");
  timers.advance(1);
  const e = await within(client.closed);
  isMqttError(e, "timeout");
  assert.match(e.message, `no PUBACK for packet ${p1.packetId} within 10 s`);
  isMqttError(await first, "closed");
  assert.equal(await conn.ended(), []);
});

test("an acknowledgement in time clears its deadline", async () => {
  const { client, conn, timers } = await connected({}, { keepaliveS: 0, ackTimeoutMs: 1_000 });
  const pub = client.publish("a", text("1"), { qos: 1 });
  const p = await conn.expect("publish");
  const sub = client.subscribe("c", { qos: 1 });
  const s = await conn.expect("subscribe");
  assert.equal(timers.pending, [1_000, 1_000]);
  await conn.write({ type: "puback", packetId: p.packetId, reasonCode: 0, properties: {} });
  await conn.write({ type: "suback", packetId: s.packetId, reasonCodes: [1], properties: {} });
  await within(Promise.all([pub, sub]));
  assert.equal(timers.pending, []);
  timers.advance(5_000);
  await realDelay(20);
  assert.ok(client.connected);
});

// ── keepalive ─────────────────────────────────────────────────────────────────────────────

test("keepalive: PINGREQ after a period with nothing sent; a send starts it again", async () => {
  const { client, conn, timers } = await connected({}, { keepaliveS: 10 });
  timers.advance(9_000);
  void client.publish("a", text("x"), { qos: 0 });
  await conn.expect("publish");
  timers.advance(9_000);
  await conn.silentFor(30);
  timers.advance(1_000);
  await conn.expect("pingreq");
  await conn.write(bytes("d0 00"));
  await until(() => timers.pending.length === 1, "the PINGRESP to be seen");
  timers.advance(10_000);
  await conn.expect("pingreq");
  assert.ok(client.connected);
});

test("keepalive keeps one timer however many packets go out (with a monotonic clock)", async () => {
  const { client, conn, timers } = await connected({}, { keepaliveS: 10 });
  for (let i = 0; i < 100; i++) void client.publish("a", text("x"), { qos: 0 });
  for (let i = 0; i < 100; i++) await conn.expect("publish");
  assert.equal(timers.pending.length, 1, "one idle timer, not one per packet");
  timers.advance(5_000);
  void client.publish("a", text("y"), { qos: 0 });
  await conn.expect("publish");
  timers.advance(5_000); // the timer finds a packet 5 s old: it waits 5 s more, no PINGREQ
  await conn.silentFor(30);
  assert.equal(timers.pending, [5_000]);
  timers.advance(5_000);
  await conn.expect("pingreq");
});

test("keepalive honours the broker's Server Keep Alive", async () => {
  const { client, conn, timers } = await connected({ serverKeepAlive: 5 }, { keepaliveS: 60 });
  assert.equal(timers.pending, [5_000]);
  timers.advance(5_000);
  await conn.expect("pingreq");
  await conn.write(bytes("d0 00"));
  await until(() => timers.pending.length === 1, "the PINGRESP to be seen");
  timers.advance(5_000);
  await conn.expect("pingreq");
  assert.ok(client.connected);
});

test("keepalive: no packet within the ack timeout after PINGREQ closes with timeout", async () => {
  const { client, conn, timers } = await connected({}, { keepaliveS: 30, ackTimeoutMs: 10_000 });
  const pub = client.publish("a", text("x"), { qos: 1 });
  const p = await conn.expect("publish");
  await conn.write({ type: "puback", packetId: p.packetId, reasonCode: 0, properties: {} });
  await within(pub);
  timers.advance(30_000);
  await conn.expect("pingreq");
  timers.advance(9_999);
  await realDelay(20);
  assert.ok(client.connected);
  timers.advance(1);
  const e = await within(client.closed);
  isMqttError(e, "timeout");
  assert.match(e.message, "no PINGRESP (nor any packet) within 10 s of a PINGREQ");
  assert.equal(await conn.ended(), [], "no DISCONNECT on a keepalive timeout");
  assert.equal(timers.pending, []);
});

test("keepalive: the PINGRESP waits one period when that is shorter than the ack timeout", async () => {
  const { client, conn, timers } = await connected({}, { keepaliveS: 4, ackTimeoutMs: 10_000 });
  timers.advance(4_000);
  await conn.expect("pingreq");
  assert.equal(timers.pending, [4_000, 4_000], "the next idle period and the PINGRESP's deadline");
  timers.advance(4_000);
  isMqttError(await within(client.closed), "timeout");
});

test("keepalive 0 sets no timer", async () => {
  const { timers } = await connected({}, { keepaliveS: 0 });
  assert.equal(timers.pending, []);
});

// ── the end ───────────────────────────────────────────────────────────────────────────────

test("a broker DISCONNECT closes with disconnected, its reason code and reason string", async () => {
  const { client, conn } = await connected();
  const pending = rejection(client.publish("a", text(SECRET_PAYLOAD), { qos: 1 }));
  await conn.expect("publish");
  await conn.write(bytes("e0 08 8b 06 1f 00 03 62 79 65"));
  const e = await within(client.closed);
  isMqttError(e, "disconnected", 0x8b);
  assert.match(e.message, "server shutting down");
  assert.match(e.message, '"bye"');
  isMqttError(await pending, "closed");
  assert.equal(await conn.ended(), [], "no DISCONNECT back");
});

test("the broker hanging up closes with network; waiting publishes reject closed", async () => {
  const { client, conn } = await connected();
  const pending = rejection(client.publish("a", text("x"), { qos: 1 }));
  await conn.expect("publish");
  conn.close();
  isMqttError(await within(client.closed), "network");
  isMqttError(await pending, "closed");
  isMqttError(await rejection(client.publish("a", text("x"), { qos: 0 })), "closed");
  assert.not.ok(client.connected);
});

test("disconnect() sends DISCONNECT, resolves closed with null, and is idempotent", async () => {
  const { client, conn } = await connected();
  const pending = rejection(client.publish("a", text("x"), { qos: 1 }));
  await conn.expect("publish");
  const d1 = client.disconnect();
  const d2 = client.disconnect();
  assert.not.ok(client.connected);
  assert.equal((await conn.ended()).map(hex), ["e0 00"]);
  await within(Promise.all([d1, d2]));
  assert.is(await within(client.closed), null);
  isMqttError(await pending, "closed");
  await within(client.disconnect());
  client.destroy();
  assert.is(await within(client.closed), null);
});

test("disconnect(0x04) asks for the will; the transport closes after the timeout", async () => {
  const { client, conn, timers } = await connected({}, { disconnectTimeoutMs: 500 });
  conn.holdOpen = true;
  const done = client.disconnect(0x04);
  assert.equal((await conn.nextRaw()).slice(), bytes("e0 01 04"));
  // The fake broker does not close its side: the client waits, then closes.
  await realDelay(20);
  timers.advance(500);
  await within(done);
  await conn.ended();
  assert.is(await within(client.closed), null);
  assert.instance(await rejection(client.disconnect(0x05)), TypeError);
});

test("destroy() in the middle of disconnect() finishes it at once: closed is null, no deadline left", async () => {
  const { client, conn, timers } = await connected({}, { disconnectTimeoutMs: 500 });
  conn.holdOpen = true;
  const done = client.disconnect();
  assert.equal((await conn.nextRaw()).slice(), bytes("e0 00"));
  assert.equal(timers.pending, [500], "disconnect() waits for the broker, at most 500 ms");
  client.destroy();
  await within(done);
  assert.is(await within(client.closed), null);
  assert.equal(timers.pending, [], "its deadline is cleared");
  assert.equal(await conn.ended(), []);
});

test("destroy() closes at once, without DISCONNECT", async () => {
  const { client, conn } = await connected();
  const pending = rejection(client.publish("a", text("x"), { qos: 1 }));
  await conn.expect("publish");
  client.destroy();
  isMqttError(await within(client.closed), "closed");
  isMqttError(await pending, "closed");
  assert.equal(await conn.ended(), []);
});

test.run();
