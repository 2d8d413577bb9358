/**
 * The audio team's example client (examples/audio_client.py, Python with paho-mqtt and cbor2,
 * written from CONTRACT.md alone) against the demo kept running with `--stay` on a real
 * mosquitto: the demo prints how to reach the speaker and stays linked after the token; the
 * client asks for the token with `cmd/token`, gets it as its MQTT 5 reply, sends
 * `cmd/refresh {reason: "rejected"}` and prints the reply; SIGTERM then stops the demo with 0.
 * Skipped without mosquitto or the Python modules, except on CI (env CI set), where it fails.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { haveMosquitto, type Mosquitto, startMosquitto } from "./support/broker.ts";
import { PYTHON, pythonHas } from "./support/python.ts";

const root = new URL("..", import.meta.url).pathname;
const have = haveMosquitto() && await pythonHas("paho.mqtt.client, cbor2");
if (!have && !Deno.env.get("CI")) {
  console.warn("SKIPPING example client: needs mosquitto, python3-paho-mqtt and python3-cbor2");
}
const run = have || Deno.env.get("CI") ? test : test.skip;

let broker: Mosquitto | null = null;
const dir = Deno.makeTempDirSync({ prefix: "linkd-example-" });
test.after(async () => {
  await broker?.stop();
  Deno.removeSync(dir, { recursive: true });
});

/** The demo as a process whose output is read as it comes; `until` waits for a pattern. */
function startDemo(...args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}dev/demo/main.ts`, ...args],
    cwd: root,
    env: { LINKD_DEMO_DIR: dir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const waiters: (() => void)[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const w of waiters.splice(0)) w();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status;
  let exited = false;
  status.then(() => (exited = true));
  // A safety net for a hung demo, not an assertion on time.
  const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return {
    child,
    text: () => text,
    async until(pattern: RegExp): Promise<void> {
      while (!pattern.test(text)) {
        if (exited) throw new Error(`The demo exited before ${pattern}:\n${text}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), status]);
      }
    },
    async stop(): Promise<number> {
      child.kill("SIGTERM");
      const s = await status;
      await pumped;
      clearTimeout(killer);
      return s.code;
    },
  };
}

/** examples/audio_client.py --once --refresh against `url`: its exit code and what it printed. */
async function audioClient(url: string): Promise<{ code: number; said: string }> {
  const client = await new Deno.Command(PYTHON, {
    args: [
      `${root}examples/audio_client.py`,
      "--url",
      url,
      "--once",
      "--refresh",
      "--timeout",
      "60",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: client.code, said: dec.decode(client.stdout) + dec.decode(client.stderr) };
}

run(
  "demo --stay: linked and reachable; the example client gets the token and a refresh reply",
  async () => {
    broker = await startMosquitto();
    const demo = startDemo("--fresh", "--approve", "--stay", "--broker", broker.url);
    await demo.until(/python3 examples\/audio_client\.py --url (\S+)/);
    const banner = demo.text();
    assert.match(banner, /\[audio\] token received: Atza\|/);
    assert.match(banner, new RegExp(`broker +${broker.url.replace(/[.]/g, "\\.")} \\(MQTT 5\\)`));
    assert.match(banner, /linkd\/cmd\/<name>/);
    assert.match(banner, /linkd\/reply\/<user>\//);
    const url = banner.match(/python3 examples\/audio_client\.py --url (\S+)/)![1]!;
    assert.is(url, broker.url);

    const { code: clientCode, said } = await audioClient(url);
    assert.is(clientCode, 0, said);
    assert.match(said, /\[audio\] connected over MQTT 5/);
    assert.match(said, /\[audio\] state: linked/);
    assert.match(said, /\[audio\] reply to token: a token/);
    assert.match(said, /\[audio\] token received \(reply to token\): Atza\|/);
    assert.match(said, /\[audio\] reply to refresh: (ok|error rate_limited)/);
    assert.not.match(said, /Traceback/);

    // Still running after the token and the client's commands; SIGTERM stops it cleanly.
    const code = await demo.stop();
    assert.is(code, 0, demo.text());
    assert.match(demo.text(), /\[audio\] state: offline/);
    assert.match(demo.text(), /Stopped\. Run `deno task demo` again/);
  },
);

run(
  "the example client after the user deregistered the speaker: invalid_grant, unlinked, the token dropped",
  async () => {
    broker ??= await startMosquitto();
    const demo = startDemo("--fresh", "--approve", "--stay", "--broker", broker.url);
    await demo.until(/The speaker stays linked/);
    const auth = demo.text().match(/authorization server (http:\/\/\S+)/)![1]!;
    const revoked = await fetch(`${auth}/_admin/revoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ clientId: "amzn1.application-oa2-client.linkd-demo" }),
    });
    assert.equal(await revoked.json(), { revoked: 1 });

    const { code, said } = await audioClient(broker.url);
    assert.is(code, 0, said);
    assert.match(said, /\[audio\] token received \(reply to token\): Atza\|/);
    assert.match(said, /\[audio\] reply to refresh: error invalid_grant/);
    assert.match(said, /\[audio\] the user deregistered this speaker/);
    assert.is(await demo.stop(), 0, demo.text());
    assert.match(demo.text(), /\[audio\] state: unlinked \(invalid_grant\)/);
  },
);

test("demo --stay takes no value; --help lists it", async () => {
  const help = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}dev/demo/main.ts`, "--help"],
    env: { LINKD_DEMO_DIR: dir },
    stdout: "piped",
  }).output();
  assert.match(new TextDecoder().decode(help.stdout), /--stay +keep the linked speaker running/);
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}dev/demo/main.ts`, "--stay=yes"],
    env: { LINKD_DEMO_DIR: dir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.is(bad.code, 64);
  assert.match(new TextDecoder().decode(bad.stderr), /--stay takes no value/);
});

test.run();
