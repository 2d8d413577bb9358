/**
 * Packet identifiers: 1..65535, handed out in turn, never one still in flight; and the
 * keepalive timer rules on fake timers.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Inflight, PACKET_ID_MAX } from "./inflight.ts";
import { Keepalive } from "./keepalive.ts";
import { FakeTimers } from "../../../test/support/mqtt.ts";

test("Inflight.add() hands out 1..65535 in turn and wraps around to 1", () => {
  const ids = new Inflight<string>();
  assert.is(ids.add("a"), 1);
  assert.is(ids.add("b"), 2);
  assert.is(ids.take(1), "a");
  assert.is(ids.take(1), undefined, "taken once");
  for (let i = 3; i <= PACKET_ID_MAX; i++) assert.is(ids.add("x"), i);
  assert.is(ids.add("wrap"), 1, "1 is free again");
  assert.is(ids.size, PACKET_ID_MAX);
  assert.is(ids.add("full"), null, "all 65535 in flight");
});

test("Inflight.add() skips identifiers still in flight", () => {
  const ids = new Inflight<number>();
  for (let i = 1; i <= 10; i++) ids.add(i);
  for (let i = 11; i <= PACKET_ID_MAX; i++) ids.add(i);
  for (let id = 1; id <= PACKET_ID_MAX; id++) if (id !== 5 && id !== 60_000) ids.take(id);
  const got = Array.from({ length: 5 }, () => ids.add(0));
  assert.equal(got, [1, 2, 3, 4, 6]);
  assert.is(ids.get(5), 5);
  assert.equal(ids.drain().sort((a, b) => a - b), [0, 0, 0, 0, 0, 5, 60_000]);
  assert.is(ids.size, 0);
});

test("Keepalive pings after an idle period and declares the broker dead one period later", () => {
  const timers = new FakeTimers();
  const log: string[] = [];
  const k = new Keepalive(timers, 1000, () => {
    log.push(`ping ${timers.now}`);
    k.sent();
  }, () => log.push(`dead ${timers.now}`));
  k.sent();
  timers.advance(600);
  k.sent(); // something sent at 600: the next ping is due at 1600
  timers.advance(999);
  assert.equal(log, []);
  timers.advance(1);
  assert.equal(log, ["ping 1600"]);
  k.received(); // the PINGRESP
  timers.advance(1000);
  assert.equal(log, ["ping 1600", "ping 2600"]);
  timers.advance(999);
  assert.equal(log, ["ping 1600", "ping 2600"]);
  timers.advance(1);
  assert.equal(log, ["ping 1600", "ping 2600", "dead 3600"]);
  assert.equal(timers.pending, [], "nothing left after death");
  timers.advance(10_000);
  assert.is(log.length, 3);
});

test("Keepalive with period 0 sets no timer; stop() clears them", () => {
  const timers = new FakeTimers();
  const off = new Keepalive(timers, 0, () => {}, () => {});
  off.sent();
  assert.equal(timers.pending, []);
  const on = new Keepalive(timers, 50, () => on.sent(), () => {});
  on.sent();
  timers.advance(50);
  assert.is(timers.pending.length, 2);
  on.stop();
  assert.equal(timers.pending, []);
});

test.run();
