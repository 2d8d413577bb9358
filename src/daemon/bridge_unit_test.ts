/** LinkBridge with a recording bus: ordering, republish after a reconnect, command answers. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Bus, CommandHandler } from "../bus/bus.ts";
import type {
  AccessToken,
  CommandName,
  CommandOptions,
  PairingInfo,
  Problem,
} from "../contract.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { Presenter } from "../present/outputs.ts";
import { LinkBridge, refreshReply } from "./bridge.ts";
import type { LinkController } from "../link/controller.ts";

function recordingBus(fail = new Set<string>()) {
  const log: string[] = [];
  let handler: CommandHandler | null = null;
  const rec = (what: string) => (x: unknown) => {
    if (fail.has(what)) return Promise.reject(new Error("broker away"));
    log.push(
      `${what}:${x === null ? "null" : typeof x === "object" ? JSON.stringify(x).slice(0, 40) : x}`,
    );
    return Promise.resolve();
  };
  const bus: Bus = {
    publishState: rec("state"),
    publishPairing: rec("pairing"),
    publishToken: rec("token"),
    publishCapabilities: rec("capabilities"),
    publishSay: rec("say"),
    publishSegment: rec("segment"),
    publishDisplay: rec("display"),
    onCommand: (h) => void (handler = h),
    close: () => Promise.resolve(),
  };
  return {
    bus,
    log,
    command: (c: CommandName, options: CommandOptions = {}) => handler!(c, options),
  };
}

const PAIRING: PairingInfo = {
  user_code: "ABCDEF",
  verification_uri: "https://amazon.com/us/code",
  expires_at: 1,
  expires_in: 600,
  interval: 5,
};
const TOKEN: AccessToken = {
  access_token: "Atza|x",
  token_type: "bearer",
  scopes: [],
  expires_at: 1,
  expires_in: 60,
};

/** A controller that records its calls; `refreshNow` answers with `answers` in turn (then null). */
function fakeController(token: AccessToken | null, answers: (Problem | null)[] = []) {
  const calls: string[] = [];
  const ctl = {
    currentToken: () => token,
    pair: () => (calls.push("pair"), Promise.resolve()),
    logout: () => (calls.push("logout"), Promise.resolve()),
    refreshNow: (reason?: string) => (
      calls.push(`refresh:${reason}`), Promise.resolve(answers.shift() ?? null)
    ),
  } as unknown as LinkController;
  return { ctl, calls };
}

function presenter(bus: Bus): Presenter {
  return new Presenter({
    outputs: ["voice", "segment", "screen"],
    lang: "en-US",
    clock: new FakeClock(),
    sinks: {
      say: (x) => bus.publishSay(x),
      segment: (x) => bus.publishSegment(x),
      display: (x) => bus.publishDisplay(x),
    },
  });
}

test("LinkBridge publishes in the order things happened, and republishes after a reconnect", async () => {
  const { bus, log } = recordingBus();
  const bridge = new LinkBridge({ bus, presenter: presenter(bus) });
  const { ctl } = fakeController(TOKEN);
  bridge.attach(ctl);
  bridge.listener.state!({ state: "pairing", since: 1, scopes: [] });
  bridge.listener.pairing!(PAIRING);
  bridge.listener.capabilities!({ granted: [], denied: [] });
  await bridge.flush();
  const first = log.map((l) => l.split(":")[0]);
  assert.equal(first.slice(0, 2), ["state", "pairing"]);
  assert.ok(first.includes("say") && first.includes("segment") && first.includes("display"));
  assert.is(first.at(-1), "capabilities");
  log.length = 0;
  bridge.republish();
  await bridge.flush();
  const again = log.map((l) => l.split(":")[0]);
  for (const t of ["state", "capabilities", "pairing", "token"]) {
    assert.ok(again.includes(t), `${t} republished: ${again}`);
  }
  assert.not.ok(again.includes("say"), "the code is not spoken again on a reconnect");
});

test("LinkBridge takes the code down once: a second end of pairing clears nothing again", async () => {
  const { bus, log } = recordingBus();
  const bridge = new LinkBridge({ bus, presenter: presenter(bus) });
  bridge.listener.pairing!(null); // boot: whatever a previous run left retained goes
  await bridge.flush();
  assert.equal(log, ["pairing:null", "segment:null", "display:null"]);
  log.length = 0;
  bridge.listener.pairing!(PAIRING);
  bridge.listener.pairing!(null); // linked
  bridge.listener.pairing!(null); // the daemon's shutdown
  await bridge.flush();
  const nulls = log.filter((l) => l.endsWith(":null"));
  assert.equal(nulls, ["pairing:null", "segment:null", "display:null"]);
});

test("LinkBridge: a failing publish is logged and does not stop the others", async () => {
  const { bus, log } = recordingBus(new Set(["pairing"]));
  const lines: string[] = [];
  const bridge = new LinkBridge({ bus, presenter: presenter(bus), log: (l) => lines.push(l) });
  bridge.listener.pairing!(PAIRING);
  bridge.listener.state!({ state: "pairing", since: 1, scopes: [] });
  await bridge.flush();
  assert.ok(log.some((l) => l.startsWith("state")));
  assert.ok(log.some((l) => l.startsWith("display")));
  assert.equal(lines, ["linkd: publishing pairing failed (Error)"]);
});

test("LinkBridge answers commands through the controller", async () => {
  const { bus, command } = recordingBus();
  const bridge = new LinkBridge({ bus, presenter: presenter(bus) });
  const { ctl, calls } = fakeController(null);
  bridge.attach(ctl);
  assert.equal(await command("pair"), { ok: true });
  assert.equal(await command("logout"), { ok: true });
  const t = await command("token");
  assert.equal((t as { ok: boolean; error: { code: string } }).error.code, "no_token");
  assert.equal(calls, ["pair", "logout"]);
});

test('LinkBridge: cmd/token answers with the token and sends it on P/token too ("on request")', async () => {
  const { bus, log, command } = recordingBus();
  const bridge = new LinkBridge({ bus, presenter: presenter(bus) });
  bridge.attach(fakeController(TOKEN).ctl);
  assert.equal(await command("token"), TOKEN);
  await bridge.flush();
  assert.equal(log.filter((l) => l.startsWith("token:")).length, 1);
});

test("LinkBridge answers cmd/refresh from refreshNow(): ok once refreshed, else the problem", async () => {
  const { bus, command } = recordingBus();
  const bridge = new LinkBridge({ bus, presenter: presenter(bus) });
  const invalidGrant = {
    code: "invalid_grant",
    message: "The grant is gone: the speaker was deregistered; pair again",
  };
  const { ctl, calls } = fakeController(TOKEN, [
    null,
    { code: "rate_limited", message: "Refreshed 3 s ago: at most one refresh per 30 s" },
    invalidGrant,
    { code: "not_linked", message: "Not linked: there is no token to refresh" },
  ]);
  bridge.attach(ctl);
  assert.equal(await command("refresh", { reason: "rejected" }), { ok: true });
  const limited = await command("refresh", {});
  assert.equal((limited as { error: { code: string } }).error.code, "rate_limited");
  assert.equal(await command("refresh", { reason: "music-401" }), {
    ok: false,
    error: invalidGrant,
  });
  assert.equal(await command("refresh"), {
    ok: false,
    error: { code: "not_linked", message: "Not linked: there is no token to refresh" },
  });
  // An absent or unknown reason reaches the controller as "rejected".
  assert.equal(calls, [
    "refresh:rejected",
    "refresh:rejected",
    "refresh:rejected",
    "refresh:rejected",
  ]);
});

test("refreshReply(): a broken problem is internal, never a throw; long texts are cut", () => {
  assert.equal(refreshReply(null), { ok: true });
  assert.equal(refreshReply({ code: "network", message: "Cannot reach the server (refused)" }), {
    ok: false,
    error: { code: "network", message: "Cannot reach the server (refused)" },
  });
  for (const p of [{}, { code: 5, message: 6 }, { code: "" }, "x", 7]) {
    const r = refreshReply(p as unknown as Problem);
    assert.is(r.ok, false);
    assert.is(r.error?.code, "internal", JSON.stringify(p));
    assert.type(r.error?.message, "string");
  }
  const long = refreshReply({ code: "c".repeat(100), message: "m".repeat(1000) });
  assert.equal([long.error?.code.length, long.error?.message.length], [64, 200]);
});

test.run();
