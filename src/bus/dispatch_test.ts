/**
 * Command dispatch without a broker: messages go straight into a Dispatcher, replies land in a
 * recorder, time is a FakeClock. (commands_test.ts runs the same rules end to end through
 * mosquitto and an independent MQTT 5 client.)
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type { AccessToken, CommandName, CommandOptions } from "../contract.ts";
import type { IncomingMessage, PublishOptions, PublishProperties } from "./mqtt/mod.ts";
import { type CommandHandler, Dispatcher, type DispatchOptions, type Replier } from "./dispatch.ts";
import { MAX_COMMAND_BYTES } from "./payloads.ts";
import { unhex } from "../../test/support/bus.ts";

const REPLY = "linkd/reply/audio/";
const TOKEN: AccessToken = {
  access_token: "Atza|dispatch-test-token",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_at: 1_800_000,
  expires_in: 1800.9,
};

interface Sent {
  topic: string;
  reply: unknown;
  options: PublishOptions;
}

interface Rig {
  dispatcher: Dispatcher;
  clock: FakeClock;
  sent: Sent[];
  calls: [CommandName, CommandOptions][];
  logs: string[];
  out: Replier;
  /** A command on linkd/cmd/<cmd>, by default with a response topic and correlation data. */
  send(cmd: string, payload?: Uint8Array, extra?: Partial<IncomingMessage>): Promise<void>;
  /** The error code of the only reply since the last call (and forgets the replies). */
  code(): string | undefined;
}

function rig(options: Partial<DispatchOptions> = {}, handler?: CommandHandler): Rig {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  const calls: [CommandName, CommandOptions][] = [];
  const logs: string[] = [];
  const dispatcher = new Dispatcher({
    prefix: "linkd",
    clock,
    replies: true,
    log: (l) => logs.push(l),
    ...options,
  });
  dispatcher.handler = handler ?? ((cmd, opts) => {
    calls.push([cmd, opts]);
    return Promise.resolve(cmd === "token" ? TOKEN : { ok: true });
  });
  const out: Replier = {
    publish(topic, payload, options) {
      sent.push({ topic, reply: decodeCbor(payload), options });
      return Promise.resolve("acked");
    },
  };
  const send: Rig["send"] = (cmd, payload = encodeCbor({}), extra = {}) =>
    dispatcher.receive(message(`linkd/cmd/${cmd}`, payload, extra), out);
  const code = () => {
    assert.is(sent.length, 1, JSON.stringify(sent));
    const r = sent.pop()!.reply as { ok?: boolean; error?: { code: string; message: string } };
    assert.is(r.ok, false, JSON.stringify(r));
    assert.type(r.error?.message, "string");
    return r.error?.code;
  };
  return { dispatcher, clock, sent, calls, logs, out, send, code };
}

function message(
  topic: string,
  payload: Uint8Array,
  extra: Partial<IncomingMessage> = {},
): IncomingMessage {
  const properties: PublishProperties = {
    responseTopic: `${REPLY}1`,
    correlationData: unhex("c0ffee"),
  };
  return { topic, payload, qos: 1, retain: false, dup: false, properties, ...extra };
}

test("receive() answers on the response topic with the correlation data, QoS 1, not retained", async () => {
  const r = rig();
  await r.send("pair", encodeCbor({ lang: "de-DE", later: "ignored" }));
  assert.equal(r.calls, [["pair", { lang: "de-DE" }]]);
  assert.equal(r.sent, [{
    topic: `${REPLY}1`,
    reply: { ok: true },
    options: { qos: 1, retain: false, properties: { correlationData: unhex("c0ffee") } },
  }]);
});

test("receive() gives a token reply the message expiry of its whole seconds left; an expired token is no_token", async () => {
  let token: AccessToken = TOKEN;
  const r = rig({}, () => Promise.resolve(token));
  await r.send("token");
  const [sent] = r.sent.splice(0);
  assert.is(sent?.options.properties?.messageExpiryInterval, 1800);
  assert.is((sent?.reply as AccessToken).access_token, TOKEN.access_token);
  token = { ...TOKEN, expires_in: 0.9 };
  await r.send("token");
  assert.is(r.sent[0]?.options.properties?.messageExpiryInterval, undefined);
  assert.is(r.code(), "no_token");
  for (const l of r.logs) assert.not.ok(l.includes("Atza|"), l);
});

test("receive() replies only under P/reply/: other response topics are never published to, the command still runs", async () => {
  const r = rig();
  const foreign = [
    "linkd/state",
    "linkd/token",
    "elsewhere/reply/x",
    "linkd/reply/",
    "linkd/replyx/1",
    "linkd/reply/a+b",
    "linkd/reply/#",
    "linkd/reply/a\0b",
    `${REPLY}${"x".repeat(257 - REPLY.length)}`,
  ];
  for (const t of foreign) {
    await r.send("logout", encodeCbor({}), {
      properties: { responseTopic: t, correlationData: unhex("01") },
    });
  }
  await r.send("logout", encodeCbor({}), { properties: {} });
  assert.is(r.calls.length, foreign.length + 1, "every command ran");
  assert.equal(r.sent, [], "none was answered");
  assert.is(r.logs.filter((l) => l.startsWith("ignoring response topic")).length, foreign.length);
  // the longest one allowed, and the shortest
  for (const t of [`${REPLY}${"x".repeat(256 - REPLY.length)}`, "linkd/reply/x"]) {
    await r.send("logout", encodeCbor({}), { properties: { responseTopic: t } });
  }
  assert.equal(r.sent.map((s) => s.topic.length), [256, 13]);
});

test("receive() on MQTT 3.1.1 (replies: false) runs commands and answers none", async () => {
  const r = rig({ replies: false });
  await r.send("pair");
  await r.send("reboot");
  assert.equal(r.calls, [["pair", {}]]);
  assert.equal(r.sent, []);
});

test("receive() rate-limits each command name: the burst runs, the rest is rate_limited, logged once", async () => {
  const r = rig();
  for (let i = 0; i < 10; i++) await r.send("pair");
  assert.is(r.sent.filter((s) => (s.reply as { ok: boolean }).ok).length, 10, "the burst of 10");
  r.sent.length = 0;
  for (let i = 0; i < 5; i++) {
    await r.send("pair");
    assert.is(r.code(), "rate_limited");
  }
  assert.is(r.calls.length, 10);
  assert.is(r.logs.filter((l) => l.includes("rate limiting pair")).length, 1, r.logs.join("\n"));
  // another command has its own bucket
  await r.send("logout");
  assert.equal(r.sent.splice(0).map((s) => s.reply), [{ ok: true }]);
  // the bucket refills on the monotonic clock: one every 2 s by default
  await r.clock.advance(1_999);
  await r.send("pair");
  assert.is(r.code(), "rate_limited");
  await r.clock.advance(2_000);
  await r.send("pair");
  assert.equal(r.sent.splice(0).map((s) => s.reply), [{ ok: true }]);
  assert.is(r.calls.length, 12);
});

test("receive() counts unknown command names in one bucket of their own, and a commandRate replaces the default", async () => {
  const r = rig({ commandRate: { burst: 2, perMinute: 1 } });
  await r.send("reboot");
  assert.is(r.code(), "unknown_command");
  await r.send("shutdown");
  assert.is(r.code(), "unknown_command");
  await r.send("x");
  assert.is(r.code(), "rate_limited");
  await r.send("pair");
  await r.send("pair");
  await r.send("pair");
  assert.equal(r.sent.map((s) => (s.reply as { ok: boolean }).ok), [true, true, false]);
});

test("receive() answers too_large, malformed and bad_request without running the handler", async () => {
  const r = rig();
  await r.send("token", encodeCbor({ pad: "x".repeat(MAX_COMMAND_BYTES) }));
  assert.is(r.code(), "too_large");
  await r.send("token", unhex("a16161"));
  assert.is(r.code(), "malformed");
  await r.send("pair", unhex("ffffffff"));
  assert.is(r.code(), "malformed");
  await r.send("pair", encodeCbor([1, 2, 3]));
  assert.is(r.code(), "bad_request");
  await r.send("refresh", encodeCbor({ reason: 403 }));
  assert.is(r.code(), "bad_request");
  assert.equal(r.calls, []);
  assert.ok(r.logs.includes("refused cmd/token: too_large"), r.logs.join("\n"));
});

test("receive() gives a handler that throws or answers nonsense internal, one that hangs timeout", async () => {
  let mode = "throw";
  const r = rig({ handlerTimeoutMs: 10_000 }, async () => {
    if (mode === "throw") throw Object.assign(new Error("boom Atza|secret"), { code: "E_X" });
    if (mode === "hang") return await new Promise<never>(() => {});
    return 42 as unknown as { ok: boolean };
  });
  await r.send("pair");
  assert.is(r.code(), "internal");
  assert.ok(r.logs.includes("cmd/pair handler failed: Error (E_X)"), r.logs.join("\n"));
  mode = "nonsense";
  await r.send("pair");
  assert.is(r.code(), "internal");
  mode = "hang";
  const pending = r.send("pair");
  await r.clock.advance(9_999);
  assert.equal(r.sent, [], "not before the deadline");
  await r.clock.advance(1);
  await pending;
  assert.is(r.code(), "timeout");
  assert.is(r.clock.pending, 0, "no deadline left behind");
  for (const l of r.logs) assert.not.ok(l.includes("Atza|"), l);
});

test("receive() answers unavailable before a handler is set, and ignores retained commands and other topics", async () => {
  const r = rig();
  r.dispatcher.handler = null;
  await r.send("pair");
  assert.is(r.code(), "unavailable");
  const handler: CommandHandler = (cmd, opts) => {
    r.calls.push([cmd, opts]);
    return Promise.resolve({ ok: true });
  };
  r.dispatcher.handler = handler;
  await r.send("logout", encodeCbor({}), { retain: true });
  await r.dispatcher.receive(message("linkd/state", encodeCbor({})), r.out);
  await r.dispatcher.receive(message("other/cmd/pair", encodeCbor({})), r.out);
  assert.equal(r.calls, []);
  assert.equal(r.sent, []);
  assert.ok(r.logs.some((l) => l.startsWith("ignoring a retained message")), r.logs.join("\n"));
});

test("receive() never rejects: a replier that throws is logged as a failed command", async () => {
  const r = rig();
  const broken: Replier = { publish: () => Promise.reject(new Error("socket gone")) };
  await r.dispatcher.receive(message("linkd/cmd/pair", encodeCbor({})), broken);
  assert.equal(r.logs, ["command failed: socket gone"]);
});

test.run();
