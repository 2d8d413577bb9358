/**
 * `linkd run` as the speaker runs it: a real process, Debian's mosquitto, the local
 * authorization server, and an independent MQTT 5 subscriber (Python paho-mqtt + cbor2).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type AuthServer, startAuthServer } from "../dev/authserver/server.ts";
import { Peer, type PeerMessage } from "./support/bus.ts";
import { encodeCbor } from "../src/cbor.ts";
import { haveMosquitto, type Mosquitto, startMosquitto } from "./support/broker.ts";
import { eachLine } from "./support/lines.ts";

const root = new URL("..", import.meta.url).pathname;
const CLIENT = "amzn1.application-oa2-client.daemontest";
const run = haveMosquitto() || Deno.env.get("CI") ? test : test.skip;

function linkd(args: string[], cwd: string, env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}src/main.ts`, ...args],
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** A device folder's config: flash and OTP files, the local server, the broker, no password. */
function writeConfig(
  dir: string,
  auth: AuthServer,
  broker: Mosquitto,
  outputs: string[],
  display: Record<string, unknown> = {},
): void {
  Deno.writeTextFileSync(`${dir}/bus.pass`, "");
  Deno.writeTextFileSync(
    `${dir}/linkd.json`,
    JSON.stringify({
      flash: { path: "flash.img" },
      keys: { otpPath: "otp.bin" },
      auth: { codepairUrl: auth.lwa.codepairUrl, tokenUrl: auth.lwa.tokenUrl },
      bus: { url: broker.url, passwordFile: "bus.pass" },
      display: { outputs, ...display },
    }),
  );
}

/** A display geometry other than the defaults (4 digits of 7 segments, 128x64). */
const GEOMETRY = { segment: { digits: 6, kind: 14 }, screen: { width: 96, height: 48 } };

/** Provisions the device of `dir` as the factory line does (exit 0 or the test fails). */
async function provision(dir: string, serial: string): Promise<void> {
  const args = ["--config", "linkd.json", "--serial", serial, "--product-id", "p"];
  const prov = await linkd(["provision", ...args, "--client-id", CLIENT], dir).output();
  assert.is(prov.code, 0, new TextDecoder().decode(prov.stderr));
}

/** The user enters the code the speaker shows on `P/pairing`. */
async function approveShownCode(p: Peer, auth: AuthServer): Promise<void> {
  const pairing = await p.waitFor(
    () => messages(p, "linkd/pairing").find((m) => (m.cbor as { user_code?: string })?.user_code),
    15_000,
  );
  assert.ok(auth.state.approve((pairing.cbor as { user_code: string }).user_code));
}

const messages = (peer: Peer, topic: string): PeerMessage[] =>
  (peer.events as unknown as PeerMessage[]).filter((e) => e.ev === "message" && e.topic === topic);
const states = (peer: Peer) =>
  messages(peer, "linkd/state").map((m) => (m.cbor as { state: string }).state);

/** One test's world (withRig). */
interface Rig {
  /** The device folder: config, flash and OTP files. */
  dir: string;
  auth: AuthServer;
  /** The audio subsystem: paho-mqtt, subscribed to `linkd/#`. */
  p: Peer;
  /** Registers a process the test started: killed at the end if it still runs. */
  track<T extends Deno.ChildProcess>(child: T): T;
}

/**
 * A device folder with its config (`outputs`, `display`), the local authorization server (poll
 * interval `interval` s), mosquitto and the audio peer on `linkd/#`, for `fn`; afterwards all of
 * it is gone and every process `fn` tracked is killed if it still runs.
 */
async function withRig(
  prefix: string,
  o: { interval?: number; outputs?: string[]; display?: Record<string, unknown> },
  fn: (r: Rig) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix });
  const poll = o.interval === undefined ? {} : { interval: o.interval };
  const auth = startAuthServer({ clients: [{ clientId: CLIENT, ...poll }] });
  const children: Deno.ChildProcess[] = [];
  let broker: Mosquitto | null = null;
  let peer: Peer | null = null;
  try {
    broker = await startMosquitto();
    writeConfig(dir, auth, broker, o.outputs ?? [], o.display);
    peer = await Peer.open({ port: broker.port, clientId: "audio" });
    await peer.subscribe("linkd/#", { qos: 1, rap: true });
    await fn({ dir, auth, p: peer, track: (c) => (children.push(c), c) });
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* already gone */ }
      // A child whose stderr a reader holds cannot give its output: its status then.
      await (async () => await c.output())().catch(() => c.status).catch(() => {});
    }
    await peer?.close();
    await broker?.stop();
    await auth.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

run(
  "linkd run: pairs, serves the token, exits 0 on SIGTERM with offline, reboots from flash",
  () =>
    withRig("linkd-daemon-", {
      interval: 1,
      outputs: ["voice", "segment", "screen"],
      display: GEOMETRY,
    }, async ({ dir, auth, p, track }) => {
      await provision(dir, "SN-D1");
      const first = track(linkd(["run", "--config", "linkd.json"], dir));
      await approveShownCode(p, auth);
      // The configured display geometry reaches the bus (decoded by the peer's cbor2).
      const seg = await p.waitFor(() => messages(p, "linkd/segment").find((m) => m.hex !== ""));
      const segment = seg.cbor as { digits: number; kind: number; frames: number[][] };
      assert.equal([segment.digits, segment.kind], [6, 14]);
      assert.ok(segment.frames.every((f) => f.length === 6));
      const disp = await p.waitFor(() => messages(p, "linkd/display").find((m) => m.hex !== ""));
      const display = disp.cbor as { width: number; height: number; bitmap: { $bytes: string } };
      assert.equal([display.width, display.height], [96, 48]);
      assert.is(display.bitmap.$bytes.length / 2, (96 / 8) * 48);
      const token = await p.waitFor(() => messages(p, "linkd/token")[0], 15_000);
      assert.match((token.cbor as { access_token: string }).access_token, /^Atza\|/);
      await p.waitFor(() => (states(p).includes("linked") ? true : undefined));

      // status answers while the daemon holds the flash, and sees the link.
      const st = await linkd(["status", "--config", "linkd.json", "--json"], dir).output();
      assert.is(st.code, 0);
      const report = JSON.parse(new TextDecoder().decode(st.stdout));
      assert.equal([report.provisioned, report.linked, report.store.ok], [true, true, true]);
      // A command that writes does not hang beside the daemon: one line, exit 75, soon.
      const t0 = performance.now();
      const busy = await linkd(["logout", "--config", "linkd.json"], dir).output();
      assert.is(busy.code, 75);
      const line = new TextDecoder().decode(busy.stderr).trim();
      assert.match(line, /^linkd: Cannot open flash .*in use by a running linkd/);
      assert.not.match(line, /\n/);
      assert.ok(performance.now() - t0 < 10_000);

      first.kill("SIGTERM");
      const status = await first.status;
      assert.is(status.code, 0, "exit 0 on SIGTERM");
      await p.waitFor(() => (states(p).at(-1) === "offline" ? true : undefined));
      const offline = messages(p, "linkd/state").at(-1)!;
      assert.is(offline.retain, true);

      // A restart with a valid sealed token publishes it without touching the network.
      const before = auth.state.stats();
      const tokensBefore = messages(p, "linkd/token").length;
      const second = track(linkd(["run", "--config", "linkd.json"], dir));
      await p.waitFor(
        () => (messages(p, "linkd/token").length > tokensBefore ? true : undefined),
        15_000,
      );
      assert.is(states(p).at(-1), "linked");
      const after = auth.state.stats();
      assert.equal([after.codepair, after.token, after.refresh], [
        before.codepair,
        before.token,
        before.refresh,
      ]);
      second.kill("SIGTERM");
      assert.is((await second.status).code, 0);
    }),
);

let asked = 0;
/** Sends `P/cmd/<cmd>` as the audio subsystem does and waits for its reply on its own topic. */
async function ask(p: Peer, cmd: string, payload: Uint8Array): Promise<PeerMessage> {
  const topic = `linkd/reply/audio/${cmd}-${++asked}`;
  const rc = await p.publish({
    topic: `linkd/cmd/${cmd}`,
    payload,
    qos: 1,
    responseTopic: topic,
    correlation: new TextEncoder().encode(topic),
  });
  assert.is(rc, 0);
  return await p.waitFor(() => messages(p, topic)[0], 15_000);
}

run(
  "linkd run: P/cmd/refresh {reason: rejected} after a revocation says unlinked within seconds",
  () =>
    withRig("linkd-revoked-", { interval: 1 }, async ({ dir, auth, p, track }) => {
      await provision(dir, "SN-D2");
      const daemon = track(linkd(["run", "--config", "linkd.json"], dir));
      await approveShownCode(p, auth);
      await p.waitFor(() => (states(p).at(-1) === "linked" ? true : undefined), 15_000);

      // The user deregistered the speaker; the pipeline's next AVS call is refused.
      assert.ok(auth.state.revokeClient(CLIENT) > 0);
      const refreshesBefore = auth.state.stats().refresh;
      const t0 = performance.now();
      const reply = await ask(p, "refresh", encodeCbor({ reason: "rejected" }));
      await p.waitFor(() => (states(p).at(-1) === "unlinked" ? true : undefined), 15_000);
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(reply.cbor, {
        ok: false,
        error: {
          code: "invalid_grant",
          message: (reply.cbor as { error: { message: string } }).error.message,
        },
      });
      assert.is(auth.state.stats().refresh, refreshesBefore + 1, "one refresh request");
      console.log(`      cmd/refresh -> unlinked after a revocation: ${seconds.toFixed(3)} s`);
      const st = await linkd(["status", "--config", "linkd.json", "--json"], dir).output();
      assert.is(JSON.parse(new TextDecoder().decode(st.stdout)).linked, false, "tokens wiped");
      daemon.kill("SIGTERM");
      assert.is((await daemon.status).code, 0);
    }),
);

/** A real systemd-style notify socket: a unix datagram socket read by Debian's Python. */
function notifySocket(path: string): { child: Deno.ChildProcess; lines: string[] } {
  const child = new Deno.Command("/usr/bin/python3", {
    args: [
      "-u",
      "-c",
      `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("ready", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", " | "), flush=True)`,
      path,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: string[] = [];
  eachLine(child.stdout, (line) => lines.push(line)).catch(() => {});
  return { child, lines };
}

run(
  "linkd run under systemd: STATUS=, READY=1 after the first state, WATCHDOG=1, journal levels",
  () =>
    withRig("linkd-notify-", {}, async ({ dir, p, track }) => {
      const sock = notifySocket(`${dir}/notify.sock`);
      try {
        for (let i = 0; i < 100 && !sock.lines.includes("ready"); i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        // As systemd starts it: JOURNAL_STREAM names the stream stderr is (here: the pipe).
        const daemon = track(new Deno.Command("/bin/sh", {
          args: [
            "-c",
            'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"',
            "sh",
            Deno.execPath(),
            "run",
            "-A",
            `${root}src/main.ts`,
            "run",
            "--config",
            "linkd.json",
          ],
          cwd: dir,
          env: { NO_COLOR: "1", NOTIFY_SOCKET: `${dir}/notify.sock`, WATCHDOG_USEC: "400000" },
          stdout: "piped",
          stderr: "piped",
        }).spawn());
        for (let i = 0; i < 500 && !sock.lines.includes("READY=1"); i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(sock.lines.includes("READY=1"), `notify socket got: ${sock.lines}`);
        // READY=1 came after the first state: the unprovisioned device's state is on the bus.
        assert.equal(states(p).slice(0, 1), ["unprovisioned"]);
        for (let i = 0; i < 100 && !sock.lines.includes("WATCHDOG=1"); i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(sock.lines.includes("WATCHDOG=1"), "the watchdog is fed");
        // systemctl status shows where linkd is: the state, before READY=1.
        assert.ok(
          sock.lines.indexOf("STATUS=unprovisioned") >= 0 &&
            sock.lines.indexOf("STATUS=unprovisioned") < sock.lines.indexOf("READY=1"),
          `notify socket got: ${sock.lines}`,
        );
        // A reload (ExecReload's SIGHUP): RELOADING=1, then READY=1 again once the state is out.
        const before = sock.lines.length;
        daemon.kill("SIGHUP");
        const since = () => sock.lines.slice(before).filter((l) => l !== "WATCHDOG=1");
        for (let i = 0; i < 500 && !since().includes("READY=1"); i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(since().filter((l) => /^(RELOADING|READY)=/.test(l)), [
          "RELOADING=1",
          "READY=1",
        ]);
        daemon.kill("SIGTERM");
        const out = await daemon.output();
        assert.is(out.code, 0);
        // Every line carries its sd-daemon level: the state change is notice.
        const log = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l !== "");
        assert.ok(log.includes("<5>linkd: state unprovisioned"), log.join("\n"));
        assert.ok(log.every((l) => /^<[3-7]>/.test(l)), log.join("\n"));
      } finally {
        sock.child.kill();
        await sock.child.output().catch(() => {});
      }
    }),
);

/** `linkd run` with its stderr read as it comes: `lines` grows while the daemon runs. */
function runLogged(dir: string): { child: Deno.ChildProcess; lines: string[] } {
  const child = linkd(["run", "--config", "linkd.json"], dir);
  const lines: string[] = [];
  eachLine(child.stderr, (line) => lines.push(line)).catch(() => {});
  return { child, lines };
}

/** The states retained on `topic` (the peer subscribed to it). */
const statesOn = (peer: Peer, topic: string) =>
  messages(peer, topic).map((m) => (m.cbor as { state: string }).state);

/** Until `pick` finds a line (real time): the daemon's log, read while it runs. */
async function waitLine(lines: string[], pick: (l: string) => boolean): Promise<string> {
  for (let i = 0; i < 750; i++) {
    const found = lines.find(pick);
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no such line in the daemon's log:\n${lines.join("\n")}`);
}

run(
  "linkd run: SIGHUP applies a changed config in the same process (new prefix, then new outputs)",
  () =>
    withRig("linkd-reload-", {}, async ({ dir, p, track }) => {
      await p.subscribe("speaker/#", { qos: 1, rap: true });
      const { child, lines } = runLogged(dir);
      track(child);
      await p.waitFor(() => (states(p).at(-1) === "unprovisioned" ? true : undefined), 15_000);

      // Another prefix: the old one is abandoned (`offline`), the new one gets the state.
      const config = JSON.parse(Deno.readTextFileSync(`${dir}/linkd.json`));
      config.bus.prefix = "speaker";
      Deno.writeTextFileSync(`${dir}/linkd.json`, JSON.stringify(config));
      child.kill("SIGHUP");
      await p.waitFor(
        () => (statesOn(p, "speaker/state").at(-1) === "unprovisioned" ? true : undefined),
        15_000,
      );
      await p.waitFor(() => (states(p).at(-1) === "offline" ? true : undefined));
      assert.ok(lines.includes("linkd: SIGHUP: applying the configuration of linkd.json"));

      // The same prefix, other outputs: the state stays on the bus, no `offline` in between.
      config.display = { outputs: ["voice", "segment"] };
      Deno.writeTextFileSync(`${dir}/linkd.json`, JSON.stringify(config));
      child.kill("SIGHUP");
      await waitLine(lines, (l) => l === "linkd: stopped for a reload, state unprovisioned kept");
      await p.waitFor(() => (statesOn(p, "speaker/state").length >= 3 ? true : undefined), 15_000);
      assert.equal(statesOn(p, "speaker/state"), [
        "unprovisioned",
        "unprovisioned",
        "unprovisioned",
      ]);
      // Still the process that was started (same PID), which SIGTERM ends as ever.
      assert.ok(Deno.statSync(`/proc/${child.pid}`).isDirectory);
      child.kill("SIGTERM");
      assert.is((await child.status).code, 0);
      await p.waitFor(() => (statesOn(p, "speaker/state").at(-1) === "offline" ? true : undefined));
    }),
);

run(
  "linkd run: SIGHUP with a broken config logs one err line and runs on unchanged",
  () =>
    withRig("linkd-badreload-", {}, async ({ dir, p, track }) => {
      const { child, lines } = runLogged(dir);
      track(child);
      await p.waitFor(() => (states(p).at(-1) === "unprovisioned" ? true : undefined), 15_000);

      Deno.writeTextFileSync(`${dir}/linkd.json`, '{"bus": {"prefix": "a/#"');
      child.kill("SIGHUP");
      const line = await waitLine(lines, (l) => l.includes("SIGHUP"));
      assert.match(
        line,
        /^linkd: SIGHUP: kept the running configuration: Cannot read config linkd\.json: not valid JSON \(/,
      );
      // It still answers on the bus, its state untouched (retained, no `offline`).
      const reply = await ask(p, "pair", encodeCbor({}));
      assert.is((reply.cbor as { ok: boolean }).ok, false);
      assert.equal(states(p), ["unprovisioned"]);
      child.kill("SIGTERM");
      assert.is((await child.status).code, 0);
      await p.waitFor(() => (states(p).at(-1) === "offline" ? true : undefined));
      assert.is(messages(p, "linkd/state").at(-1)!.retain, true);
      assert.is(lines.filter((l) => l.includes("SIGHUP")).length, 1, lines.join("\n"));
    }),
);

test.run();
