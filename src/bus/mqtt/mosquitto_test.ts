/**
 * MqttClient against Debian's real mosquitto, MQTT 5 and MQTT 3.1.1, read and driven by an
 * independent peer (paho-mqtt in Python). One broker with a password file and an ACL serves
 * the suite; the broker-stopped test has its own.
 *
 * ACL: linkd may read and write `linkd/#` and read `relay/#`; the peer anything. The peer
 * listens to `linkd/#` (not `relay/#`, where hostile bytes go that paho 1.6 chokes on).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Mosquitto, startMosquitto } from "../../../test/support/broker.ts";
import { Peer, type PeerMessage, TcpProxy } from "../../../test/support/bus.ts";
import { MqttClient } from "./client.ts";
import { MqttError } from "./errors.ts";
import type { ConnectOptions, IncomingMessage } from "./types.ts";
import { encodePacket } from "./packets.ts";
import { assertNoSecret, bytes, hex, rejection, text, within } from "../../../test/support/mqtt.ts";

const USERS = { linkd: "linkd-Secr3t-pw-9c1e", peer: "peer-pw-77" };
const ACL =
  "user linkd\ntopic readwrite linkd/#\ntopic read relay/#\n\nuser peer\ntopic readwrite #\n";

let broker: Mosquitto;
let peer: Peer;
let seq = 0;

const cleanups: (() => void | Promise<void>)[] = [];
test.before(async () => {
  broker = await startMosquitto({ users: USERS, acl: ACL });
  peer = await Peer.open({ port: broker.port, username: "peer", password: USERS.peer });
  assert.equal(await peer.subscribe("linkd/#", { qos: 1, rap: true }), [1]);
});
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});
test.after(async () => {
  await peer.close();
  await broker.stop();
});

interface Linkd {
  client: MqttClient;
  messages: IncomingMessage[];
}

async function linkd(version: 4 | 5, o: Partial<ConnectOptions> = {}): Promise<Linkd> {
  const messages: IncomingMessage[] = [];
  const client = await within(MqttClient.connect({
    url: broker.url,
    protocolVersion: version,
    clientId: `linkd-${version}-${++seq}`,
    keepaliveS: 30,
    username: "linkd",
    password: USERS.linkd,
    onMessage: (m) => messages.push(m),
    ...o,
  }));
  cleanups.push(() => client.destroy());
  return { client, messages };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function on(topic: string): (m: PeerMessage) => boolean {
  return (m) => m.topic === topic;
}

for (const v of [5, 4] as const) {
  const T = `linkd/v${v}`;

  test(`v${v}: connect(), subscribe() and publish() QoS 0 and 1 both ways`, async () => {
    const { client, messages } = await linkd(v);
    assert.ok(client.connected);
    assert.is(client.protocolVersion, v);
    if (v === 5) assert.is(client.connack.properties.receiveMaximum, 20, "mosquitto's default");
    assert.equal(await within(client.subscribe(`${T}/in/#`, { qos: 1 })), [1]);
    assert.equal(await within(client.subscribe(`${T}/in0/#`, { qos: 0 })), [0]);

    assert.is(await peer.publish({ topic: `${T}/in/a`, payload: text("one"), qos: 1 }), 0);
    assert.is(await peer.publish({ topic: `${T}/in/b`, payload: text("two"), qos: 0 }), 0);
    assert.is(await peer.publish({ topic: `${T}/in0/c`, payload: text("three"), qos: 1 }), 0);
    await until(() => messages.length === 3, "three messages");
    assert.equal(
      messages.map((m) => [m.topic, new TextDecoder().decode(m.payload), m.qos, m.retain]),
      [[`${T}/in/a`, "one", 1, false], [`${T}/in/b`, "two", 0, false], [
        `${T}/in0/c`,
        "three",
        0,
        false,
      ]],
    );

    assert.is(await within(client.publish(`${T}/out/1`, text("q1"), { qos: 1 })), 0);
    assert.is(await within(client.publish(`${T}/out/0`, text("q0"), { qos: 0 })), 0);
    const q1 = await peer.waitMessage(on(`${T}/out/1`));
    const q0 = await peer.waitMessage(on(`${T}/out/0`));
    assert.is(q1.qos, 1);
    assert.is(q1.hex, hex(text("q1")).replaceAll(" ", ""));
    assert.is(q0.qos, 0);
  });

  test(`v${v}: a retained publish reaches a later subscriber with retain set`, async () => {
    const { client, messages } = await linkd(v);
    const payload = new Uint8Array(70_000).map((_, i) => i * 31);
    assert.is(
      await within(client.publish(`${T}/state`, payload, { qos: 1, retain: true })),
      0,
    );
    const live = await peer.waitMessage(on(`${T}/state`));
    assert.is(live.retain, true, "Retain As Published");
    assert.equal(await within(client.subscribe(`${T}/state`, { qos: 1 })), [1]);
    await until(() => messages.length === 1, "the retained message");
    assert.is(messages[0]!.retain, true);
    assert.equal(messages[0]!.payload, payload);
    // Clear it for the next run.
    await within(client.publish(`${T}/state`, new Uint8Array(0), { qos: 1, retain: true }));
  });

  test(`v${v}: the will goes after destroy(), not after disconnect()`, async () => {
    const will = (payload: string) => ({
      will: { topic: `${T}/will`, payload: text(payload), qos: 1 as const, retain: false },
    });
    const polite = await linkd(v, will("after-disconnect"));
    await within(polite.client.disconnect());
    assert.is(await within(polite.client.closed), null);
    const rude = await linkd(v, will("after-destroy"));
    rude.client.destroy();
    const e = await within(rude.client.closed);
    assert.instance(e, MqttError);
    assert.is(e!.code, "closed");
    await peer.waitMessage(on(`${T}/will`));
    // Both went in order: a will after disconnect() would have come first.
    assert.equal(
      peer.messages(`${T}/will`).map((m) => m.hex),
      [hex(text("after-destroy")).replaceAll(" ", "")],
    );
  });

  test(`v${v}: a login with a wrong password or an unknown user is refused`, async () => {
    const wrong = [
      { username: "linkd", password: "not-the-password" },
      { username: "intruder", password: USERS.linkd },
    ];
    for (const w of wrong) {
      const e = await rejection(
        MqttClient.connect({
          url: broker.url,
          protocolVersion: v,
          clientId: `refused-${v}-${++seq}`,
          keepaliveS: 0,
          ...w,
        }),
      );
      assert.instance(e, MqttError);
      const err = e as MqttError;
      assert.is(err.code, "refused", err.message);
      const allowed = v === 5 ? [0x86, 0x87] : [4, 5];
      assert.ok(allowed.includes(err.reasonCode!), `reason code ${err.reasonCode}`);
      assertNoSecret(err, w.password);
      assertNoSecret(err, USERS.linkd);
    }
  });

  test(`v${v}: a QoS 1 publish the ACL refuses is not delivered (v5: PUBACK 0x87)`, async () => {
    const { client } = await linkd(v);
    assert.is(await peer.subscribe(`forbidden/v${v}`, { qos: 1 }).then((r) => r[0]), 1);
    const rc = await within(client.publish(`forbidden/v${v}`, text("no"), { qos: 1 }));
    assert.is(rc, v === 5 ? 0x87 : 0);
    // Sent after it on the same connection: when this arrives, the refused one would have.
    await within(client.publish(`${T}/after-acl`, text("yes"), { qos: 1 }));
    await peer.waitMessage(on(`${T}/after-acl`));
    assert.equal(peer.messages(`forbidden/v${v}`), []);
    assert.ok(client.connected);
  });

  test(`v${v}: messages over our maximumPacketSize are not delivered, or close (3.1.1)`, async () => {
    const { client, messages } = await linkd(v, { maximumPacketSize: 1024 });
    await within(client.subscribe(`${T}/big`, { qos: 1 }));
    await peer.publish({ topic: `${T}/big`, payload: new Uint8Array(2000), qos: 1 });
    await peer.publish({ topic: `${T}/big`, payload: text("small"), qos: 1 });
    if (v === 5) {
      await until(() => messages.length === 1, "the small message");
      assert.equal(messages[0]!.payload, text("small"));
      assert.ok(client.connected);
    } else {
      // MQTT 3.1.1 cannot tell the broker: the client refuses the packet itself.
      const e = await within(client.closed);
      assert.is(e?.code, "protocol");
      assert.is(e?.reasonCode, 0x95);
      assert.is(messages.length, 0);
    }
  });
}

test("v5: publish() properties reach the peer: expiry, response topic, correlation data", async () => {
  const { client } = await linkd(5);
  await within(client.publish("linkd/v5/token", text("tok"), {
    qos: 1,
    properties: {
      messageExpiryInterval: 3600,
      responseTopic: "linkd/reply/x",
      correlationData: new Uint8Array([0xc0, 0xff, 0xee]),
    },
  }));
  const m = await peer.waitMessage(on("linkd/v5/token"));
  assert.ok(m.expiry !== null && m.expiry <= 3600 && m.expiry >= 3590, `expiry ${m.expiry}`);
  assert.is(m.response_topic, "linkd/reply/x");
  assert.is(m.correlation_hex, "c0ffee");
  assert.is(m.qos, 1);
});

test("v5: a command from the peer arrives with its response topic and correlation data", async () => {
  const { client, messages } = await linkd(5);
  await within(client.subscribe("linkd/v5/cmd/+", { qos: 1 }));
  await peer.publish({
    topic: "linkd/v5/cmd/token",
    payload: text("{}"),
    qos: 1,
    responseTopic: "linkd/reply/audio/1",
    correlation: new Uint8Array([1, 2, 3, 4]),
  });
  await until(() => messages.length === 1, "the command");
  const m = messages[0]!;
  assert.is(m.topic, "linkd/v5/cmd/token");
  assert.is(m.qos, 1);
  assert.is(m.properties.responseTopic, "linkd/reply/audio/1");
  assert.equal(m.properties.correlationData, new Uint8Array([1, 2, 3, 4]));
});

test("v5: what mosquitto relays from a careless client does not cut the connection", async () => {
  const { client, messages } = await linkd(5);
  await within(client.subscribe("relay/x", { qos: 0 }));
  // paho lets a wildcard into a Response Topic; MQTT forbids it, mosquitto relays it.
  await peer.publish({
    topic: "relay/x",
    payload: text("1"),
    qos: 1,
    responseTopic: "linkd/reply/a+b",
    correlation: new Uint8Array([9]),
  });
  // A raw client sends Payload Format Indicator 2, which mosquitto relays as well.
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
  cleanups.push(() => raw.close());
  const connect = encodePacket({
    type: "connect",
    protocolVersion: 5,
    clientId: "raw",
    cleanStart: true,
    keepalive: 30,
    username: "peer",
    password: text(USERS.peer),
    properties: {},
  }, 5);
  await raw.write(connect);
  assert.is((await raw.read(new Uint8Array(64)))! > 0, true, "CONNACK");
  // PUBLISH QoS 0 "relay/x", properties (2): Payload Format Indicator 2, payload "2"
  await raw.write(bytes("30 0d 00 07 72 65 6c 61 79 2f 78 02 01 02 32"));
  await until(() => messages.length === 2, "both messages");
  assert.equal(messages.map((m) => m.properties), [{ correlationData: new Uint8Array([9]) }, {}]);
  assert.ok(client.connected);
});

test("v4: a command from a v5 peer arrives without properties", async () => {
  const { client, messages } = await linkd(4);
  await within(client.subscribe("linkd/v4/cmd/+", { qos: 1 }));
  await peer.publish({
    topic: "linkd/v4/cmd/token",
    payload: text("{}"),
    responseTopic: "linkd/reply/audio/1",
    correlation: new Uint8Array([1]),
  });
  await until(() => messages.length === 1, "the command");
  assert.equal(messages[0]!.properties, {});
});

test("a broker stopped mid-session: closed reports it, waiting publishes reject closed", async () => {
  const own = await startMosquitto();
  cleanups.push(() => own.stop());
  const proxy = new TcpProxy(own.port);
  cleanups.push(() => proxy.close());
  const direct = await within(MqttClient.connect({
    url: own.url,
    protocolVersion: 5,
    clientId: "direct",
    keepaliveS: 30,
  }));
  cleanups.push(() => direct.destroy());
  const viaProxy = await within(MqttClient.connect({
    url: proxy.url,
    protocolVersion: 5,
    clientId: "proxied",
    keepaliveS: 30,
  }));
  cleanups.push(() => viaProxy.destroy());
  proxy.freeze(); // the PUBACK can never come back
  const waiting = rejection(viaProxy.publish("x", text("x"), { qos: 1 }));
  await own.stop();
  const e1 = await within(direct.closed);
  assert.ok(e1 !== null, "direct: closed with a reason");
  assert.ok(
    e1!.code === "disconnected" && e1!.reasonCode === 0x8b || e1!.code === "network",
    `direct: ${e1!.code} ${e1!.reasonCode}: ${e1!.message}`,
  );
  const e2 = await within(viaProxy.closed);
  assert.is(e2?.code, "network", e2?.message);
  const p = await waiting;
  assert.instance(p, MqttError);
  assert.is((p as MqttError).code, "closed");
  assert.not.ok(direct.connected || viaProxy.connected);
});

test.run();
