/**
 * The demo's embedded broker (aedes): MQTT 3.1.1 only, so linkd connects with protocolVersion 4.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type { LinkState } from "../../src/contract.ts";
import { BusError, connectBus } from "../../src/bus/bus.ts";
import { startEmbeddedBroker } from "./embedded.ts";
import { Peer, realDelay } from "../../test/support/bus.ts";

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const LINKED: LinkState = { state: "linked", since: T0, scopes: ["alexa:all"] };

const cleanups: (() => Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

test("startEmbeddedBroker(): a late subscriber gets linkd's retained state, and the token", async () => {
  const broker = await startEmbeddedBroker();
  cleanups.push(() => broker.close());
  assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
  assert.is(broker.protocolVersion, 4);
  const clock = new FakeClock({ wall: T0 });
  const bus = await connectBus({
    url: broker.url,
    prefix: "linkd",
    clock,
    random: () => 0.5,
    protocolVersion: broker.protocolVersion,
  });
  cleanups.push(() => bus.close());
  await bus.publishState(LINKED);
  await bus.publishPairing(null);

  const sub = await Peer.open({ port: broker.port, protocol: 4 });
  cleanups.push(() => sub.close());
  await sub.subscribe("linkd/#");
  const state = await sub.waitMessage((m) => m.topic === "linkd/state");
  assert.equal(state.cbor, LINKED);
  assert.equal(state.shape, { state: "str", since: "int", scopes: ["str"] });
  assert.is(state.retain, true);

  await bus.publishToken({
    access_token: "Atza|demo",
    token_type: "bearer",
    scopes: ["alexa:all"],
    expires_at: T0 + 60_000,
    expires_in: 60,
  });
  const token = await sub.waitMessage((m) => m.topic === "linkd/token");
  assert.is((token.cbor as { access_token: string }).access_token, "Atza|demo");
  assert.is(token.retain, false);
  assert.is(token.expiry, null, "MQTT 3.1.1 has no message expiry");

  await bus.close();
  const off = await sub.waitMessage((m) => m.topic === "linkd/state", 2);
  assert.equal(off.cbor, { state: "offline", since: T0, scopes: [] });
  await realDelay(100);
  assert.equal(sub.messages().map((m) => m.topic), ["linkd/state", "linkd/token", "linkd/state"]);
});

test("startEmbeddedBroker(): aedes refuses MQTT 5, and connectBus() says so instead of retrying", async () => {
  const broker = await startEmbeddedBroker();
  cleanups.push(() => broker.close());
  // A bare MQTT 5 CONNECT (client id "a"); aedes answers with a 3.1.1 CONNACK, return code 1
  // (unacceptable protocol version). paho-mqtt reports it as 0x84 (unsupported protocol version).
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
  const body = [0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0x02, 0, 60, 0, 0, 1, 0x61];
  await conn.write(new Uint8Array([0x10, body.length, ...body]));
  const buf = new Uint8Array(16);
  const n = await conn.read(buf);
  conn.close();
  assert.equal([...buf.subarray(0, n ?? 0)], [0x20, 0x02, 0x00, 0x01]);
  const { peer, rc } = await Peer.connect({ port: broker.port, protocol: 5 });
  cleanups.push(() => peer.close());
  assert.is(rc, 0x84);
  const e = await connectBus({
    url: broker.url,
    prefix: "linkd",
    clock: new FakeClock(),
    random: () => 0.5,
  }).then(() => null, (e) => e);
  assert.ok(e instanceof BusError && e.code === "refused" && e.reasonCode === 1, String(e));
});

test("startEmbeddedBroker() listens on the port asked for, and close() frees it", async () => {
  const first = await startEmbeddedBroker();
  const port = first.port;
  await first.close();
  await first.close();
  const again = await startEmbeddedBroker({ port });
  cleanups.push(() => again.close());
  assert.is(again.port, port);
  let refused = false;
  try {
    await startEmbeddedBroker({ port });
  } catch {
    refused = true;
  }
  assert.ok(refused, "a port in use is an error");
});

test.run();
