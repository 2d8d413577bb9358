/**
 * Commands on P/cmd/+ from an independent MQTT 5 client (paho-mqtt): replies on the response
 * topic with the request's correlation data, and hostile input that never stops the bus.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeCbor } from "../cbor.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type { AccessToken, CommandName, CommandOptions } from "../contract.ts";
import { type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { type Bus, type BusOptions, type CommandHandler, connectBus } from "./bus.ts";
import { errorReply, MAX_COMMAND_BYTES } from "./payloads.ts";
import { Peer, type PeerMessage, realDelay, TcpProxy, unhex } from "../../test/support/bus.ts";

const REPLY = "linkd/reply/audio/";
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const TOKEN: AccessToken = {
  access_token: "Atza|command-test-token",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_at: T0 + 1_800_000,
  expires_in: 1800,
};

interface Rig {
  broker: Mosquitto;
  bus: Bus;
  clock: FakeClock;
  audio: Peer;
  calls: [CommandName, CommandOptions][];
  logs: string[];
  /** Sends a command and waits for its reply (by correlation data). */
  ask(
    cmd: string,
    payload: Uint8Array,
    corr: string,
    opts?: { timeoutMs?: number },
  ): Promise<PeerMessage>;
}

const cleanups: (() => Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

async function rig(handler?: CommandHandler, extra: Partial<BusOptions> = {}): Promise<Rig> {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const clock = new FakeClock({ wall: T0 });
  const logs: string[] = [];
  const calls: [CommandName, CommandOptions][] = [];
  let token: AccessToken | null = TOKEN;
  const bus = await connectBus({
    url: broker.url,
    prefix: "linkd",
    clock,
    random: () => 0.5,
    log: (l) => logs.push(l),
    ...extra,
  });
  cleanups.push(() => bus.close());
  bus.onCommand(
    handler ?? (async (cmd, options) => {
      calls.push([cmd, options]);
      await Promise.resolve();
      if (cmd === "logout") token = null;
      if (cmd === "token") return token ?? errorReply("no_token", "linkd holds no valid token");
      return { ok: true };
    }),
  );
  const audio = await Peer.open({ port: broker.port, username: "audio" });
  cleanups.push(() => audio.close());
  assert.equal(await audio.subscribe(`${REPLY}#`), [1]);
  const ask: Rig["ask"] = async (cmd, payload, corr, opts = {}) => {
    const rc = await audio.publish({
      topic: `linkd/cmd/${cmd}`,
      payload,
      responseTopic: `${REPLY}${cmd}`,
      correlation: new TextEncoder().encode(corr),
    });
    assert.is(rc, 0, "the broker took the command");
    return await audio.waitMessage(
      (m) => m.correlation_hex === hexText(corr),
      1,
      opts.timeoutMs ?? 5000,
    );
  };
  return { broker, bus, clock, audio, calls, logs, ask };
}

function hexText(s: string): string {
  return Array.from(new TextEncoder().encode(s), (x) => x.toString(16).padStart(2, "0")).join("");
}

function errorCode(m: PeerMessage): string | undefined {
  const c = m.cbor as { ok?: boolean; error?: { code: string; message: string } };
  assert.is(c.ok, false, JSON.stringify(c));
  assert.type(c.error?.message, "string");
  return c.error?.code;
}

test("cmd/token is answered with the token payload, its correlation data and message expiry", async () => {
  const r = await rig();
  const m = await r.ask("token", encodeCbor({}), "corr-token-1");
  assert.is(m.topic, `${REPLY}token`);
  assert.equal(m.cbor, TOKEN);
  assert.equal(m.shape, {
    access_token: "str",
    token_type: "str",
    scopes: ["str"],
    expires_at: "int",
    expires_in: "int",
  });
  assert.is(m.retain, false);
  assert.ok(m.expiry !== null && m.expiry <= 1800 && m.expiry >= 1795, `expiry ${m.expiry}`);
  assert.equal(r.calls, [["token", {}]]);

  const empty = await r.ask("token", new Uint8Array(0), "corr-token-2");
  assert.equal(empty.cbor, TOKEN, "an empty payload is {}");

  const bye = await r.ask("logout", encodeCbor({}), "corr-logout");
  assert.equal(bye.cbor, { ok: true });
  const none = await r.ask("token", encodeCbor({}), "corr-token-3");
  assert.is(errorCode(none), "no_token");
  assert.is(none.expiry, null);
  for (const l of r.logs) assert.not.ok(l.includes("Atza|"), l);
});

test("hostile commands each get a coded error reply, and a valid cmd/pair is answered after", async () => {
  const r = await rig();
  // oversized
  const big = encodeCbor({ pad: "x".repeat(MAX_COMMAND_BYTES) });
  assert.is(errorCode(await r.ask("token", big, "big")), "too_large");
  // malformed CBOR
  assert.is(errorCode(await r.ask("token", unhex("a16161"), "torn")), "malformed");
  assert.is(errorCode(await r.ask("pair", unhex("ffffffff"), "junk")), "malformed");
  // well-formed, wrong types
  assert.is(errorCode(await r.ask("pair", encodeCbor([1, 2, 3]), "array")), "bad_request");
  assert.is(errorCode(await r.ask("pair", encodeCbor({ lang: 42 }), "lang")), "bad_request");
  assert.is(errorCode(await r.ask("logout", unhex("a10102"), "intkey")), "bad_request");
  assert.is(errorCode(await r.ask("logout", unhex("c11a514b67b0"), "tag")), "bad_request");
  // unknown command
  assert.is(errorCode(await r.ask("reboot", encodeCbor({}), "unknown")), "unknown_command");
  assert.is(r.calls.length, 0, "no handler ran for any of them");

  // a flood of 500 cmd/pair: every one answered, most of them rate_limited. Refused commands
  // count against the bucket too; a minute refills it.
  await r.clock.advance(60_000);
  await r.audio.flood("linkd/cmd/pair", encodeCbor({}), 500, `${REPLY}flood`, unhex("f100d0"));
  const replies = await r.audio.waitMessages((m) => m.topic === `${REPLY}flood`, 500, 30_000);
  const corr = new Set(replies.map((m) => m.correlation_hex));
  assert.is(corr.size, 500, "each flood message has its own reply");
  const ok = replies.filter((m) => (m.cbor as { ok: boolean }).ok === true).length;
  const limited =
    replies.filter((m) => (m.cbor as { error?: { code: string } }).error?.code === "rate_limited")
      .length;
  assert.is(ok, 10, "the burst of 10 ran");
  assert.is(limited, 490);
  assert.is(r.calls.length, 10);
  assert.ok(
    r.logs.filter((l) => l.includes("rate limiting")).length === 1,
    "rate limiting is logged once, not 490 times",
  );

  // another command has its own bucket
  assert.equal((await r.ask("token", encodeCbor({}), "after-flood")).cbor, TOKEN);
  // and pair recovers as the bucket refills
  await r.clock.advance(2_000);
  const pair = await r.ask("pair", encodeCbor({ lang: "de-DE", later: "ignored" }), "pair-after");
  assert.equal(pair.cbor, { ok: true });
  assert.equal(r.calls.at(-1), ["pair", { lang: "de-DE" }]);
});

test("cmd/refresh reaches the handler with its reason; a reason that is not short text is bad_request", async () => {
  const r = await rig();
  assert.equal((await r.ask("refresh", encodeCbor({ reason: "rejected" }), "r1")).cbor, {
    ok: true,
  });
  assert.equal((await r.ask("refresh", new Uint8Array(0), "r2")).cbor, { ok: true });
  assert.equal((await r.ask("refresh", encodeCbor({ reason: "avs-403", x: 1 }), "r3")).cbor, {
    ok: true,
  });
  assert.is(errorCode(await r.ask("refresh", encodeCbor({ reason: 403 }), "r4")), "bad_request");
  assert.is(
    errorCode(await r.ask("refresh", encodeCbor({ reason: "x".repeat(65) }), "r5")),
    "bad_request",
  );
  assert.equal(r.calls, [
    ["refresh", { reason: "rejected" }],
    ["refresh", {}],
    ["refresh", { reason: "avs-403" }],
  ]);
});

test("a command without a response topic runs and is not answered; a foreign response topic is never published to", async () => {
  const r = await rig();
  const watcher = await Peer.open({ port: r.broker.port });
  cleanups.push(() => watcher.close());
  await watcher.subscribe("#");
  assert.is(await r.audio.publish({ topic: "linkd/cmd/pair", payload: encodeCbor({}) }), 0);
  for (
    const t of ["linkd/state", "linkd/token", "elsewhere/x", "linkd/reply/+/x", "linkd/reply/"]
  ) {
    await r.audio.publish({
      topic: "linkd/cmd/token",
      payload: encodeCbor({}),
      responseTopic: t.includes("+") ? "linkd/reply/a+b" : t,
      correlation: unhex("0102"),
    });
  }
  const last = await r.ask("logout", encodeCbor({}), "sync");
  assert.equal(last.cbor, { ok: true });
  await realDelay(200);
  assert.equal(r.calls.map((c) => c[0]), [
    "pair",
    "token",
    "token",
    "token",
    "token",
    "token",
    "logout",
  ]);
  const published = watcher.messages().filter((m) => !m.topic.startsWith("linkd/cmd/"));
  assert.equal(published.map((m) => m.topic), [`${REPLY}logout`], "only the valid reply");
});

test("a handler that throws, hangs, or answers nonsense gets internal or timeout, and the bus goes on", async () => {
  let mode = "throw";
  const r = await rig(async (cmd) => {
    if (mode === "throw") throw new Error("boom with Atza|secret inside");
    if (mode === "hang") return await new Promise(() => {});
    if (mode === "nonsense") return 42 as unknown as { ok: boolean };
    return cmd === "pair" ? { ok: true } : { ok: false, error: { code: "nope", message: "n" } };
  }, { handlerTimeoutMs: 10_000 });
  assert.is(errorCode(await r.ask("pair", encodeCbor({}), "throw")), "internal");
  mode = "nonsense";
  assert.is(errorCode(await r.ask("pair", encodeCbor({}), "nonsense")), "internal");
  mode = "hang";
  const pending = r.ask("pair", encodeCbor({}), "hang");
  await realDelay(200);
  await r.clock.advance(10_000);
  assert.is(errorCode(await pending), "timeout");
  mode = "fine";
  assert.equal((await r.ask("pair", encodeCbor({}), "fine")).cbor, { ok: true });
  assert.is(errorCode(await r.ask("logout", encodeCbor({}), "coded")), "nope");
  assert.ok(r.logs.some((l) => l.includes("handler failed")), r.logs.join("\n"));
  for (const l of r.logs) assert.not.ok(l.includes("Atza|"), l);
});

test("commands before onCommand() are answered unavailable; retained commands are never replayed", async () => {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const proxy = new TcpProxy(broker.port);
  cleanups.push(() => proxy.close());
  const audio = await Peer.open({ port: broker.port });
  cleanups.push(() => audio.close());
  await audio.subscribe(`${REPLY}#`);
  const calls: string[] = [];
  const clock = new FakeClock();
  let reconnects = 0;
  const bus = await connectBus({
    url: proxy.url,
    prefix: "linkd",
    clock,
    random: () => 0.1,
    onReconnect: () => reconnects++,
  });
  cleanups.push(() => bus.close());
  const send = async (cmd: string, corr: string, retain = false) => {
    await audio.publish({
      topic: `linkd/cmd/${cmd}`,
      payload: encodeCbor({}),
      responseTopic: `${REPLY}${corr}`,
      correlation: unhex(corr),
      retain,
    });
    return await audio.waitMessage((m) => m.correlation_hex === corr);
  };
  assert.is(errorCode(await send("pair", "aa")), "unavailable");
  bus.onCommand((cmd) => {
    calls.push(cmd);
    return Promise.resolve({ ok: true });
  });
  // published with the retain flag: acted on once, live...
  assert.equal((await send("logout", "bb", true)).cbor, { ok: true });
  // ...and after a reconnect the broker's retained copy does not reach linkd again
  proxy.cut();
  while (reconnects === 0) {
    await clock.advance(1_000);
    await realDelay(20);
  }
  assert.equal((await send("pair", "cc")).cbor, { ok: true });
  assert.equal(calls, ["logout", "pair"], "the retained logout was not replayed");
});

test.run();
