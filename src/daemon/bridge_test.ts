/**
 * The link, end to end on the bus: the link controller against the local authorization server
 * (fake time), the bus on Debian's real mosquitto, the presentation outputs, and an independent
 * subscriber (Python paho-mqtt + cbor2) that sees what the audio subsystem would. `cmd/refresh`
 * is driven both through a scripted controller (every answer, a flood) and the real one
 * (a refresh, the 30 s limit, a revoked grant).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type AuthServer, startAuthServer } from "../../dev/authserver/server.ts";
import { type Bus, connectBus } from "../bus/bus.ts";
import { encodeCbor } from "../cbor.ts";
import { Peer, type PeerMessage, unhex } from "../../test/support/bus.ts";
import { systemClock } from "../clock.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { Presenter } from "../present/outputs.ts";
import { RecordType } from "../records/types.ts";
import type { Vault } from "../store/vault.ts";
import { drive, type TrackedFetch, trackFetch } from "../../test/support/drive.ts";
import { haveMosquitto, type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { provisionedVault } from "../../test/support/link.ts";
import { prng } from "../../test/support/random.ts";
import { LinkBridge } from "./bridge.ts";
import { type Problem, REFRESH_COOLDOWN_MS } from "../contract.ts";
import { LinkController } from "../link/controller.ts";

const CLIENT = "amzn1.application-oa2-client.bridgetest";
const run = haveMosquitto() || Deno.env.get("CI") ? test : test.skip;

const messages = (peer: Peer, topic: string): PeerMessage[] =>
  (peer.events as unknown as PeerMessage[]).filter((e) => e.ev === "message" && e.topic === topic);

let asked = 0;
/** Sends `P/cmd/<cmd>` as the audio subsystem does and waits for its reply (its own topic). */
async function ask(p: Peer, cmd: string, payload: Uint8Array): Promise<PeerMessage> {
  const topic = `linkd/reply/audio/${cmd}-${++asked}`;
  assert.is(
    await p.publish({
      topic: `linkd/cmd/${cmd}`,
      payload,
      qos: 1,
      responseTopic: topic,
      correlation: new TextEncoder().encode(topic),
    }),
    0,
  );
  return await p.waitFor(() => messages(p, topic)[0], 10_000);
}

/** The error code of a reply, after checking the reply's shape as cbor2 decoded it. */
function errorCode(m: PeerMessage): string {
  assert.equal(m.shape, { ok: "bool", error: { code: "str", message: "str" } }, JSON.stringify(m));
  return (m.cbor as { error: { code: string } }).error.code;
}

/**
 * The link controller of a device provisioned as `serial` on the local server (LWA, fallback
 * alexa:all), reporting to `bridge`; its vault and the fetch log the test drives.
 */
function controller(
  server: AuthServer,
  clock: FakeClock,
  bridge: LinkBridge,
  o: { serial: string; scopes: string[]; seed: number },
): { vault: Vault; io: TrackedFetch; ctl: LinkController } {
  const vault = provisionedVault(CLIENT, o.serial);
  const io = trackFetch(clock);
  const ctl = new LinkController({
    vault,
    identity: { clientId: CLIENT, productId: "speaker", serial: o.serial },
    auth: {
      dialect: "lwa",
      codepairUrl: server.lwa.codepairUrl,
      tokenUrl: server.lwa.tokenUrl,
      scopes: o.scopes,
      fallbackScopes: ["alexa:all"],
    },
    fetch: io.fetch,
    clock,
    random: prng(o.seed),
    listener: bridge.listener,
  });
  return { vault, io, ctl };
}

/** A presenter that shows nothing: the refresh tests are about the bus. */
const silent = (clock: FakeClock) =>
  new Presenter({ outputs: ["terminal"], lang: "en-US", clock, sinks: { terminal: () => {} } });

run(
  "LinkBridge: pairing, code, presentation, token and commands reach a real subscriber",
  async () => {
    const clock = new FakeClock();
    const server = startAuthServer({
      clock,
      clients: [{ clientId: CLIENT, enabledScopes: ["alexa:all"] }],
    });
    let broker: Mosquitto | null = null;
    let bus: Bus | null = null;
    let peer: Peer | null = null;
    let ctl: LinkController | null = null;
    try {
      broker = await startMosquitto();
      peer = await Peer.open({ port: broker.port, clientId: "audio-test" });
      await peer.subscribe("linkd/#", { qos: 1, rap: true });
      bus = await connectBus({
        url: broker.url,
        prefix: "linkd",
        clock: systemClock,
        random: prng(1),
      });
      const terminal: string[] = [];
      const b = bus;
      const presenter = new Presenter({
        outputs: ["voice", "segment", "screen", "terminal"],
        lang: "en-US",
        clock,
        sinks: {
          say: (x) => b.publishSay(x),
          segment: (x) => b.publishSegment(x),
          display: (x) => b.publishDisplay(x),
          terminal: (t) => void terminal.push(t),
        },
      });
      const bridge = new LinkBridge({ bus, presenter });
      const { vault, io, ctl: made } = controller(server, clock, bridge, {
        serial: "SN-BRIDGE-1",
        scopes: ["alexa:all", "music::library:read"],
        seed: 2,
      });
      ctl = made;
      bridge.attach(ctl);
      const c = ctl;
      await ctl.start();
      await drive(clock, io, () => c.state.state === "pairing", { label: "pairing" });
      await bridge.flush();
      const p = peer;

      // The code on every output.
      const pairing = await p.waitFor(() =>
        messages(p, "linkd/pairing").find((m) => (m.cbor as { user_code?: string })?.user_code)
      );
      const code = (pairing.cbor as { user_code: string }).user_code;
      assert.match(code, /^[A-Z]{6}$/);
      assert.is(pairing.retain, true);
      const pc = pairing.cbor as Record<string, unknown>;
      assert.equal(Object.keys(pc).sort(), [
        "expires_at",
        "expires_in",
        "interval",
        "user_code",
        "verification_uri",
      ]);
      const say = await p.waitFor(() => messages(p, "linkd/say")[0]);
      assert.is(say.retain, false);
      assert.ok(
        (say.cbor as { text: string }).text.includes(code.split("").join(", ")),
        "the code spelled out",
      );
      const seg = await p.waitFor(() => messages(p, "linkd/segment").find((m) => m.hex !== ""));
      assert.is(seg.retain, true);
      assert.is((seg.cbor as { digits: number }).digits, 4);
      const disp = await p.waitFor(() => messages(p, "linkd/display").find((m) => m.hex !== ""));
      const d = disp.cbor as { width: number; height: number; bitmap: { $bytes: string } };
      assert.equal([d.width, d.height, d.bitmap.$bytes.length / 2], [128, 64, 1024]);
      assert.ok(terminal.some((t) => t.includes(code)), "the terminal shows the code");
      const caps = await p.waitFor(() =>
        messages(p, "linkd/capabilities").find((m) =>
          (m.cbor as { denied: unknown[] }).denied.length > 0
        )
      );
      assert.equal(caps.cbor, {
        granted: [],
        denied: [{ scope: "music::library:read", reason: "unknown_scope" }],
      });

      // The user approves: a token, the state, and the code taken down everywhere.
      server.state.approve(code);
      await drive(clock, io, () => c.state.state === "linked", { label: "linked" });
      await bridge.flush();
      const token = await p.waitFor(() => messages(p, "linkd/token")[0]);
      assert.is(token.retain, false);
      assert.is(token.qos, 1);
      const t = token.cbor as Record<string, unknown>;
      assert.match(String(t.access_token), /^Atza\|/);
      assert.is(t.token_type, "bearer");
      assert.equal(t.scopes, ["alexa:all"]);
      assert.ok(
        token.expiry !== null && token.expiry > 3500 && token.expiry <= 3600,
        `expiry ${token.expiry}`,
      );
      assert.ok(vault.get(RecordType.TOKENS), "sealed before");
      await p.waitFor(() => messages(p, "linkd/pairing").find((m) => m.hex === "" && m.retain));
      await p.waitFor(() => messages(p, "linkd/segment").find((m) => m.hex === ""));
      await p.waitFor(() => messages(p, "linkd/display").find((m) => m.hex === ""));
      await p.waitFor(() =>
        messages(p, "linkd/state").find((m) => (m.cbor as { state: string }).state === "linked")
      );

      // The audio subsystem asks for the token, then logs out.
      await p.publish({
        topic: "linkd/cmd/token",
        payload: new Uint8Array([0xa0]),
        qos: 1,
        responseTopic: "linkd/reply/audio/1",
        correlation: new Uint8Array([1, 2, 3]),
      });
      const reply = await p.waitFor(() => messages(p, "linkd/reply/audio/1")[0]);
      assert.is(reply.correlation_hex, "010203");
      assert.is((reply.cbor as { access_token: string }).access_token, t.access_token);
      await p.publish({
        topic: "linkd/cmd/logout",
        payload: new Uint8Array([0xa0]),
        qos: 1,
        responseTopic: "linkd/reply/audio/2",
        correlation: new Uint8Array([4]),
      });
      const out = await p.waitFor(() => messages(p, "linkd/reply/audio/2")[0]);
      assert.equal(out.cbor, { ok: true });
      assert.is(c.state.state, "unlinked");
      assert.is(vault.get(RecordType.TOKENS), null);
      await bridge.flush();
      await p.waitFor(() =>
        messages(p, "linkd/state").find((m) => (m.cbor as { state: string }).state === "unlinked")
      );
    } finally {
      await ctl?.stop();
      await bus?.close();
      await peer?.close();
      await broker?.stop();
      await server.close();
    }
  },
);

run(
  "cmd/refresh through mosquitto: every answer of the controller, bad options, and a flood all answered",
  async () => {
    let broker: Mosquitto | null = null;
    let bus: Bus | null = null;
    let peer: Peer | null = null;
    try {
      broker = await startMosquitto();
      peer = await Peer.open({ port: broker.port, clientId: "audio-refresh" });
      const p = peer;
      await p.subscribe("linkd/reply/#", { qos: 1 });
      bus = await connectBus({
        url: broker.url,
        prefix: "linkd",
        clock: systemClock,
        random: prng(4),
      });
      const bridge = new LinkBridge({ bus, presenter: silent(new FakeClock()) });
      // A controller that refreshes when told to (`finish`), joins calls to the refresh in
      // flight, and says rate_limited after one until `cool` is cleared, as the real one does.
      const reasons: (string | undefined)[] = [];
      let refreshes = 0;
      let cool = false;
      let answer: Problem | null = null;
      let inFlight: Promise<Problem | null> | null = null;
      let finish: () => void = () => {};
      let hold = false;
      const ctl = {
        currentToken: () => null,
        refreshNow: (reason?: string): Promise<Problem | null> => {
          reasons.push(reason);
          if (inFlight) return inFlight;
          if (cool) {
            return Promise.resolve({ code: "rate_limited", message: "at most one per 30 s" });
          }
          refreshes++;
          inFlight = new Promise<void>((r) => {
            finish = r;
            if (!hold) r();
          }).then(() => {
            inFlight = null;
            cool = true;
            return answer;
          });
          return inFlight;
        },
      } as unknown as LinkController;
      bridge.attach(ctl);

      const ok = await ask(p, "refresh", encodeCbor({ reason: "rejected" }));
      assert.equal(ok.cbor, { ok: true });
      assert.equal(ok.shape, { ok: "bool" });
      assert.is(ok.retain, false);
      assert.is(errorCode(await ask(p, "refresh", new Uint8Array(0))), "rate_limited");
      cool = false;
      answer = { code: "invalid_grant", message: "The grant is gone: pair again" };
      const gone = await ask(p, "refresh", encodeCbor({ reason: "music-401" }));
      assert.equal(gone.cbor, { ok: false, error: answer });
      assert.equal(reasons, ["rejected", "rejected", "rejected"], "unknown reasons are rejected");
      assert.is(errorCode(await ask(p, "refresh", encodeCbor({ reason: 7 }))), "bad_request");
      assert.is(
        errorCode(await ask(p, "refresh", unhex("a166726561736f6ec11a514b67b0"))),
        "bad_request",
      );
      assert.is(reasons.length, 3, "a bad command never reaches the controller");

      // A flood while a refresh is in flight: every command answered, those the bus let through
      // joined the one refresh, the others rate_limited by the bus.
      cool = false;
      answer = null;
      hold = true;
      const before = reasons.length;
      const n = 60;
      await p.flood(
        "linkd/cmd/refresh",
        encodeCbor({ reason: "rejected" }),
        n,
        "linkd/reply/audio/flood",
        unhex("f100d0"),
      );
      const flood = () => messages(p, "linkd/reply/audio/flood");
      await p.waitFor(() => flood().length + (reasons.length - before) === n || undefined, 15_000);
      const reached = reasons.length - before;
      assert.ok(reached >= 1, "the bus let at least one through");
      assert.is(refreshes, 3, "one refresh for the whole flood");
      finish();
      const replies = await p.waitFor(() => flood().length >= n ? flood() : undefined, 15_000);
      assert.is(new Set(replies.map((m) => m.correlation_hex)).size, n, "each its own reply");
      const okCount = replies.filter((m) => (m.cbor as { ok: boolean }).ok).length;
      assert.is(okCount, reached, "every command that reached the controller joined the refresh");
      for (const m of replies.filter((m) => !(m.cbor as { ok: boolean }).ok)) {
        assert.is(errorCode(m), "rate_limited");
      }
    } finally {
      await bus?.close();
      await peer?.close();
      await broker?.stop();
    }
  },
);

run(
  "cmd/refresh with the real controller: a new token at once, one per 30 s, a revoked grant unlinks; account on P/state",
  async () => {
    const clock = new FakeClock();
    const scopes = ["alexa:all", "profile:user_id"];
    const server = startAuthServer({
      clock,
      clients: [{ clientId: CLIENT, enabledScopes: scopes }],
      autoApprove: true,
    });
    let broker: Mosquitto | null = null;
    let bus: Bus | null = null;
    let peer: Peer | null = null;
    let ctl: LinkController | null = null;
    try {
      broker = await startMosquitto();
      peer = await Peer.open({ port: broker.port, clientId: "audio-refresh-real" });
      const p = peer;
      await p.subscribe("linkd/#", { qos: 1, rap: true });
      bus = await connectBus({
        url: broker.url,
        prefix: "linkd",
        clock: systemClock,
        random: prng(5),
      });
      const bridge = new LinkBridge({ bus, presenter: silent(clock) });
      const { vault, io, ctl: made } = controller(server, clock, bridge, {
        serial: "SN-BRIDGE-2",
        scopes: scopes,
        seed: 6,
      });
      ctl = made;
      bridge.attach(ctl);
      const c = ctl;
      const refreshes = () => io.log.filter((l) => l.form.grant_type === "refresh_token").length;
      await ctl.start();
      await drive(clock, io, () => c.state.account !== undefined && refreshes() >= 1, {
        label: "linked, account read, first refresh",
      });
      await bridge.flush();

      // The account, as the audio subsystem decodes it: text, and since an integer.
      const linked = await p.waitFor(() =>
        messages(p, "linkd/state").find((m) => (m.cbor as { account?: unknown }).account)
      );
      assert.equal(linked.shape, {
        state: "str",
        since: "int",
        scopes: ["str", "str"],
        account: { fingerprint: "str" },
      });
      const account = (linked.cbor as { account: { fingerprint: string } }).account;
      assert.match(account.fingerprint, /^[0-9a-f]{32}$/);

      // A resource server refused the token: refreshed at once, the new token on P/token.
      await clock.advance(REFRESH_COOLDOWN_MS);
      const tokens = () => messages(p, "linkd/token");
      await p.waitFor(() => tokens().length >= 2 || undefined);
      const had = tokens().length;
      const n = refreshes();
      const ok = await ask(p, "refresh", encodeCbor({ reason: "rejected" }));
      assert.equal(ok.cbor, { ok: true });
      assert.is(refreshes(), n + 1);
      await bridge.flush();
      const fresh = await p.waitFor(() => tokens()[had]);
      const last = (m: PeerMessage) => (m.cbor as { access_token: string }).access_token;
      assert.is.not(last(fresh), last(tokens()[had - 1]!), "a new access token");
      assert.equal(fresh.shape, {
        access_token: "str",
        token_type: "str",
        scopes: ["str", "str"],
        expires_at: "int",
        expires_in: "int",
      });
      // Again within 30 s: rate_limited, no request.
      assert.is(errorCode(await ask(p, "refresh", new Uint8Array(0))), "rate_limited");
      assert.is(refreshes(), n + 1);

      // The user deregistered the speaker: invalid_grant, tokens wiped, unlinked on P/state.
      server.state.revokeClient(CLIENT);
      await clock.advance(REFRESH_COOLDOWN_MS);
      assert.is(
        errorCode(await ask(p, "refresh", encodeCbor({ reason: "rejected" }))),
        "invalid_grant",
      );
      assert.is(vault.get(RecordType.TOKENS), null);
      await bridge.flush();
      const unlinked = await p.waitFor(() =>
        messages(p, "linkd/state").find((m) => (m.cbor as { state: string }).state === "unlinked")
      );
      assert.is((unlinked.shape as { since: string }).since, "int");
      assert.is(errorCode(await ask(p, "refresh", encodeCbor({}))), "not_linked");
    } finally {
      await ctl?.stop();
      await bus?.close();
      await peer?.close();
      await broker?.stop();
      await server.close();
    }
  },
);

test.run();
