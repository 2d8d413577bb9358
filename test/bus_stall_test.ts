/**
 * `linkd run` against a broker that stalls: Debian's mosquitto behind a proxy (MqttProxy) that
 * withholds the SUBACK of the first connection and every PUBACK of the second, then answers
 * nothing and reads nothing at all. A real linkd process, the local authorization server, and
 * an independent MQTT 5 subscriber. linkd must log each stall, reconnect, pair and publish its
 * token, and still exit 0 soon after SIGTERM. Times are printed (the 15 s bound only guards
 * against a hang), never asserted.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type AuthServer, startAuthServer } from "../dev/authserver/server.ts";
import { MqttProxy, Peer, type PeerMessage, realDelay } from "./support/bus.ts";
import { haveMosquitto, type Mosquitto, startMosquitto } from "./support/broker.ts";

const root = new URL("..", import.meta.url).pathname;
const CLIENT = "amzn1.application-oa2-client.stalltest";
const run = haveMosquitto() || Deno.env.get("CI") ? test : test.skip;

/** A linkd process whose stderr is collected as it comes. */
interface Linkd {
  child: Deno.ChildProcess;
  stderr: () => string;
}

function linkd(args: string[], cwd: string): Linkd {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}src/main.ts`, ...args],
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })().catch(() => {});
  return { child, stderr: () => text };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await realDelay(50);
  }
}

const messages = (peer: Peer, topic: string): PeerMessage[] =>
  (peer.events as unknown as PeerMessage[]).filter((e) => e.ev === "message" && e.topic === topic);

run(
  "linkd run: no SUBACK, then no PUBACK: logs why, reconnects, pairs; SIGTERM exits 0 against a mute broker",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "linkd-stall-" });
    const auth: AuthServer = startAuthServer({ clients: [{ clientId: CLIENT, interval: 1 }] });
    let broker: Mosquitto | null = null;
    let proxy: MqttProxy | null = null;
    let peer: Peer | null = null;
    let daemon: Linkd | null = null;
    try {
      broker = await startMosquitto();
      proxy = new MqttProxy(broker.port);
      proxy.withhold = (p) =>
        (p.conn === 1 && p.type === "suback") || (p.conn === 2 && p.type === "puback");
      Deno.writeTextFileSync(`${dir}/bus.pass`, "");
      Deno.writeTextFileSync(
        `${dir}/linkd.json`,
        JSON.stringify({
          flash: { path: "flash.img" },
          keys: { otpPath: "otp.bin" },
          auth: { codepairUrl: auth.lwa.codepairUrl, tokenUrl: auth.lwa.tokenUrl },
          bus: { url: proxy.url, passwordFile: "bus.pass" },
          display: { outputs: ["voice", "segment"] },
        }),
      );
      const prov = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${root}src/main.ts`,
          "provision",
          "--config",
          "linkd.json",
          "--serial",
          "SN-STALL",
          "--product-id",
          "p",
          "--client-id",
          CLIENT,
        ],
        cwd: dir,
        env: { NO_COLOR: "1" },
      }).output();
      assert.is(prov.code, 0, new TextDecoder().decode(prov.stderr));

      peer = await Peer.open({ port: broker.port, clientId: "audio" });
      const p = peer;
      await p.subscribe("linkd/#", { qos: 1, rap: true });
      const started = performance.now();
      const d = linkd(["run", "--config", "linkd.json"], dir);
      daemon = d;

      // 1. The first connection gets no SUBACK: linkd says so, and connects again.
      await waitFor(
        () => /no SUBACK for packet \d+ within 10 s/.test(d.stderr()),
        "SUBACK",
        20_000,
      );
      const subackAt = performance.now();
      // 2. The second gets no PUBACK: the state, the code and the token still go out, in order,
      //    not one waiting for the last one's PUBACK.
      const pairing = await p.waitFor(
        () =>
          messages(p, "linkd/pairing").find((m) => (m.cbor as { user_code?: string })?.user_code),
        20_000,
      );
      const pairingAt = performance.now();
      assert.ok(auth.state.approve((pairing.cbor as { user_code: string }).user_code));
      await p.waitFor(() => messages(p, "linkd/token")[0], 20_000);
      // ... on the second connection, while the state's and the code's PUBACKs are still missing
      assert.is(proxy.connections, 2);
      assert.not.match(d.stderr(), /no PUBACK/);
      await waitFor(
        () => /no PUBACK for packet \d+ within 10 s/.test(d.stderr()),
        "PUBACK",
        20_000,
      );
      const pubackAt = performance.now();
      // 3. The third connection is whole: after the second one's will (`offline`), the retained
      //    state is the link's again.
      const states = () =>
        messages(p, "linkd/state").map((m) => (m.cbor as { state: string }).state);
      await waitFor(
        () =>
          proxy!.connections >= 3 && states().includes("offline") &&
          states().lastIndexOf("linked") > states().lastIndexOf("offline"),
        "linked after the reconnect",
        20_000,
      );
      const late = await Peer.open({ port: broker.port, clientId: "late" });
      try {
        await late.subscribe("linkd/state");
        const retained = await late.waitMessage((m) => m.topic === "linkd/state");
        assert.is((retained.cbor as { state: string }).state, "linked");
      } finally {
        await late.close();
      }
      const lines = d.stderr().split("\n").filter((l) => /timed out: no (SUBACK|PUBACK)/.test(l));
      assert.ok(lines.length >= 2, d.stderr());
      for (const l of lines) assert.match(l, /^bus: .*; reconnecting in \d+\.\d s$/);

      // 4. The broker now answers nothing and reads nothing; SIGTERM still ends linkd with 0.
      await realDelay(300);
      proxy.stall();
      const t0 = performance.now();
      d.child.kill("SIGTERM");
      const status = await Promise.race([
        d.child.status,
        realDelay(15_000).then(() => null),
      ]);
      const shutdownS = (performance.now() - t0) / 1000;
      assert.ok(status !== null, `linkd still running 15 s after SIGTERM: ${d.stderr()}`);
      assert.is(status.code, 0, d.stderr());
      // Once the broker sees the connection gone, the will leaves the retained state offline.
      proxy.cut();
      await p.waitFor(
        () =>
          messages(p, "linkd/state").at(-1) &&
            (messages(p, "linkd/state").at(-1)!.cbor as { state: string }).state === "offline"
            ? true
            : undefined,
        20_000,
      );
      assert.not.match(d.stderr(), /Atza\|/, "no token in the log");
      console.log(
        `     SUBACK stall logged at ${
          ((subackAt - started) / 1000).toFixed(1)
        } s, code shown at ` +
          `${((pairingAt - started) / 1000).toFixed(1)} s, PUBACK stall logged at ` +
          `${((pubackAt - started) / 1000).toFixed(1)} s; shutdown against a mute broker ` +
          `${shutdownS.toFixed(2)} s`,
      );
    } finally {
      if (daemon) {
        try {
          daemon.child.kill("SIGKILL");
        } catch { /* already gone */ }
        await daemon.child.status.catch(() => {});
      }
      await peer?.close();
      await proxy?.close();
      await broker?.stop();
      await auth.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

test.run();
