/**
 * The link, end to end on the bus: the link controller against the local authorization server
 * (fake time), the bus on Debian's real mosquitto, the presentation outputs, and an independent
 * subscriber (Python paho-mqtt + cbor2) that sees what the audio subsystem would.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAuthServer } from "../authserver/server.ts";
import { type Bus, connectBus } from "../bus/bus.ts";
import { Peer, type PeerMessage } from "../bus/_testing.ts";
import { FakeClock, systemClock } from "../clock.ts";
import { Presenter } from "../present/outputs.ts";
import { RecordType } from "../store/vault.ts";
import { drive, trackFetch } from "../../test/support/drive.ts";
import { haveMosquitto, type Mosquitto, startMosquitto } from "../../test/support/broker.ts";
import { provisionedVault } from "../../test/support/link.ts";
import { prng } from "../../test/support/random.ts";
import { LinkBridge } from "./bridge.ts";
import { LinkController } from "./controller.ts";

const CLIENT = "amzn1.application-oa2-client.bridgetest";
const run = haveMosquitto() || Deno.env.get("CI") ? test : test.skip;

const messages = (peer: Peer, topic: string): PeerMessage[] =>
  (peer.events as unknown as PeerMessage[]).filter((e) => e.ev === "message" && e.topic === topic);

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
      const vault = provisionedVault(CLIENT, "SN-BRIDGE-1");
      const io = trackFetch(clock);
      ctl = new LinkController({
        vault,
        identity: { clientId: CLIENT, productId: "speaker", serial: "SN-BRIDGE-1" },
        auth: {
          dialect: "lwa",
          codepairUrl: server.lwa.codepairUrl,
          tokenUrl: server.lwa.tokenUrl,
          scopes: ["alexa:all", "music::library:read"],
          fallbackScopes: ["alexa:all"],
        },
        fetch: io.fetch,
        clock,
        random: prng(2),
        listener: bridge.listener,
      });
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

test.run();
