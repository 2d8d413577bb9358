/**
 * The speaker's broker configuration (firmware/mosquitto) on Debian's real mosquitto, with a
 * password file made by mosquitto_passwd: every refusal as the peer observes it.
 *
 * What mosquitto 2.0 does with MQTT 5: a refused login is CONNACK 0x87 (for anonymous clients
 * and for a wrong password alike); a refused QoS 1 publish is PUBACK 0x87 and the message goes
 * nowhere; a refused QoS 0 publish is dropped silently; a subscription is granted (SUBACK 0x01)
 * whatever the ACL, and the messages the ACL does not let the client read are never delivered.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeCbor } from "../cbor.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type { AccessToken } from "../contract.ts";
import { type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { type Bus, BusError, connectBus } from "./bus.ts";
import { Peer, realDelay, unhex } from "../../test/support/bus.ts";

const FIRMWARE = new URL("../../firmware/mosquitto/", import.meta.url).pathname;
const USERS = { linkd: "linkd-pass-1", audio: "audio-pass-2", guest: "guest-pass-3" };
const NOT_AUTHORIZED = 0x87;
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const TOKEN: AccessToken = {
  access_token: "Atza|acl-test",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_at: T0 + 3_600_000,
  expires_in: 3600,
};
const OUT_TOPICS = ["state", "pairing", "token", "capabilities", "say", "segment", "display"];

const cleanups: (() => Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

/** linkd.conf without the lines naming the port and files, which the test supplies. */
async function firmwareConfig(): Promise<string> {
  const text = await Deno.readTextFile(`${FIRMWARE}linkd.conf`);
  return text.split("\n").filter((l) => !/^(listener|password_file|acl_file)\b/.test(l)).join(
    "\n",
  );
}

async function speakerBroker(): Promise<Mosquitto> {
  const b = await startMosquitto({
    config: await firmwareConfig(),
    acl: await Deno.readTextFile(`${FIRMWARE}acl`),
    users: USERS,
  });
  cleanups.push(() => b.stop());
  return b;
}

async function as(b: Mosquitto, user: keyof typeof USERS): Promise<Peer> {
  const p = await Peer.open({ port: b.port, username: user, password: USERS[user] });
  cleanups.push(() => p.close());
  return p;
}

async function linkdBus(b: Mosquitto, calls: string[] = []): Promise<Bus> {
  const bus = await connectBus({
    url: b.url,
    username: "linkd",
    password: USERS.linkd,
    prefix: "linkd",
    clock: new FakeClock({ wall: T0 }),
    random: () => 0.5,
  });
  cleanups.push(() => bus.close());
  bus.onCommand((cmd) => {
    calls.push(cmd);
    return Promise.resolve(cmd === "token" ? TOKEN : { ok: true });
  });
  return bus;
}

test("linkd.conf listens on 127.0.0.1:1883 only and names the password file and the ACL", async () => {
  const lines = (await Deno.readTextFile(`${FIRMWARE}linkd.conf`)).split("\n")
    .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  assert.equal(lines.filter((l) => /^(listener|port|bind_address)\b/.test(l)), [
    "listener 1883 127.0.0.1",
  ]);
  assert.ok(lines.includes("allow_anonymous false"));
  assert.ok(lines.includes("password_file /etc/mosquitto/linkd.passwd"));
  assert.ok(lines.includes("acl_file /etc/mosquitto/linkd.acl"));
});

test("anonymous clients and wrong passwords are refused at CONNECT", async () => {
  const b = await speakerBroker();
  for (
    const [who, o] of [
      ["anonymous", {}],
      ["anonymous 3.1.1", { protocol: 4 as const }],
      ["a wrong password", { username: "audio", password: "wrong" }],
      ["an unknown user", { username: "mallory", password: "x" }],
    ] as const
  ) {
    const { peer, rc } = await Peer.connect({ port: b.port, ...o });
    cleanups.push(() => peer.close());
    // MQTT 5: 0x87 Not authorized; MQTT 3.1.1: 5 Not authorized.
    assert.is(rc, "protocol" in o ? 5 : NOT_AUTHORIZED, who);
  }
  const refused = await connectBus({
    url: b.url,
    username: "linkd",
    password: "wrong-pass-9",
    prefix: "linkd",
    clock: new FakeClock(),
    random: () => 0.5,
  }).then(() => null, (e: Error & { code?: string; reasonCode?: number }) => e);
  assert.ok(refused instanceof BusError, String(refused));
  assert.is(refused.code, "refused");
  assert.is(refused.reasonCode, NOT_AUTHORIZED);
  assert.not.ok(refused.message.includes("wrong-pass-9"), "the password is not in the message");
});

test("linkd publishes state and token and reads commands; audio reads the token and commands", async () => {
  const b = await speakerBroker();
  const calls: string[] = [];
  const bus = await linkdBus(b, calls);
  const audio = await as(b, "audio");
  assert.equal(await audio.subscribe("linkd/#"), [1]);
  await bus.publishState({ state: "linked", since: T0, scopes: ["alexa:all"] });
  await bus.publishToken(TOKEN);
  const token = await audio.waitMessage((m) => m.topic === "linkd/token");
  assert.equal(token.cbor, TOKEN);
  assert.is((await audio.waitMessage((m) => m.topic === "linkd/state")).retain, false);
  // a command and its reply
  const rc = await audio.publish({
    topic: "linkd/cmd/token",
    payload: encodeCbor({}),
    responseTopic: "linkd/reply/audio/1",
    correlation: unhex("c0ffee"),
  });
  assert.is(rc, 0);
  const reply = await audio.waitMessage((m) => m.topic === "linkd/reply/audio/1");
  assert.is(reply.correlation_hex, "c0ffee");
  assert.equal(reply.cbor, TOKEN);
  assert.equal(calls, ["token"]);
});

test("audio cannot publish any linkd topic nor forge a reply: PUBACK 0x87, and no subscriber sees it", async () => {
  const b = await speakerBroker();
  const bus = await linkdBus(b);
  const audio = await as(b, "audio");
  const reader = await as(b, "audio");
  assert.equal(await reader.subscribe("linkd/#"), [1]);
  const forged = encodeCbor({ ...TOKEN, access_token: "forged" });
  for (const t of [...OUT_TOPICS, "reply/audio/1", "anything/else"]) {
    assert.is(
      await audio.publish({ topic: `linkd/${t}`, payload: forged, retain: true }),
      NOT_AUTHORIZED,
      `audio → linkd/${t}`,
    );
  }
  // QoS 0: no answer at all, and no delivery either
  assert.is(await audio.publish({ topic: "linkd/token", payload: forged, qos: 0 }), 0);
  // linkd's own publish arrives, and nothing forged came before it (the broker keeps order)
  await bus.publishToken(TOKEN);
  await reader.waitMessage((m) => m.topic === "linkd/token");
  await realDelay(100);
  assert.equal(reader.messages().map((m) => m.topic), ["linkd/token"]);
  assert.equal(reader.messages()[0]!.cbor, TOKEN);
  // and nothing forged was retained
  const late = await as(b, "audio");
  await late.subscribe("linkd/#");
  await realDelay(300);
  assert.is(late.messages().length, 0);
});

test("guest reads nothing under linkd/ and cannot send commands; linkd reads only commands", async () => {
  const b = await speakerBroker();
  const calls: string[] = [];
  const bus = await linkdBus(b, calls);
  const guest = await as(b, "guest");
  const linkdPeer = await as(b, "linkd");
  const audio = await as(b, "audio");
  // mosquitto grants the subscriptions (SUBACK 0x01) and filters at delivery
  assert.equal(await guest.subscribe("linkd/token"), [1]);
  assert.equal(await guest.subscribe("linkd/#"), [1]);
  assert.equal(await linkdPeer.subscribe("linkd/token"), [1]);
  assert.equal(await linkdPeer.subscribe("linkd/state"), [1]);
  assert.equal(await audio.subscribe("linkd/#"), [1]);
  await bus.publishState({ state: "linked", since: T0, scopes: [] });
  await bus.publishToken(TOKEN);
  await audio.waitMessage((m) => m.topic === "linkd/token");
  // guest cannot command either
  assert.is(
    await guest.publish({
      topic: "linkd/cmd/token",
      payload: encodeCbor({}),
      responseTopic: "linkd/reply/guest/1",
    }),
    NOT_AUTHORIZED,
  );
  assert.is(await guest.publish({ topic: "linkd/state", payload: encodeCbor({}) }), NOT_AUTHORIZED);
  await realDelay(300);
  assert.is(guest.messages().length, 0, "guest saw nothing");
  assert.is(linkdPeer.messages().length, 0, "linkd's user reads no state or token");
  assert.equal(calls, [], "no command reached linkd");
});

test.run();
