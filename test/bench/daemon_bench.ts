/**
 * Boot figures of `linkd run` as it ships, from the firmware payload (launcher, bundle, V8 code
 * cache in its own DENO_DIR, as /var/cache/linkd on the speaker): from process start to the first
 * token on the bus, with a sealed valid token in flash (no network), beside the same payload
 * whose linkd.js is a hello-world (same launcher, runtime, flags, its own code cache); and the
 * bundle's and the code cache's sizes.
 *
 * The runs go in pairs, a boot then a hello-world, both pinned to the same CPU (`taskset`), the
 * CPU changing from pair to pair. This machine's two virtual CPUs do not run at the same speed
 * (hello-world takes 71 ms on one and 97 ms on the other here), so unpinned runs mix fast and
 * slow and the ratio of medians jumps between 1.2 and 1.9. The ratio reported is the median of
 * the pairs' ratios. Pinning costs the boot a little: V8's helper threads share its CPU.
 *
 * A third payload, in the same pairs, runs linkd's bundle without its entry call (loadOnly): the
 * runtime loads and evaluates linkd's code (its code cache, every module body) and exits. Its
 * time over the hello-world's is what linkd's code costs before it does any work.
 */
import { parseConfig } from "../../src/config.ts";
import { Device } from "../../src/device.ts";
import { provision } from "../../src/provision/provision.ts";
import { RecordType } from "../../src/records/types.ts";
import { encodeTokenRecord } from "../../src/records/token.ts";
import { bundle } from "../../scripts/bundle.ts";
import { launcher } from "../../scripts/runtime.ts";
import { clientArgs, haveMosquitto, startMosquitto } from "../support/broker.ts";
import type { Row } from "./main.ts";
import { median, pinnableCpus, pinned } from "./timing.ts";
import { seedSigner } from "../../src/provision/line_signer.ts";

const RUNS = 14;
const wallMs = () => performance.timeOrigin + performance.now();

/**
 * A payload folder as build.ts writes it (the runtime, here this one by a symlink, the launcher,
 * `script` as linkd.js) and its own code cache folder; the launcher's path.
 */
function payloadIn(dir: string, name: string, script: string): { bin: string; cache: string } {
  const p = `${dir}/${name}`;
  Deno.mkdirSync(p);
  Deno.symlinkSync(Deno.execPath(), `${p}/deno`);
  Deno.writeTextFileSync(`${p}/linkd`, launcher(), { mode: 0o755 });
  Deno.chmodSync(`${p}/linkd`, 0o755);
  Deno.copyFileSync(script, `${p}/linkd.js`);
  const cache = `${dir}/${name}-cache`;
  Deno.mkdirSync(cache);
  return { bin: `${p}/linkd`, cache };
}

/**
 * `code` (the bundle) without its entry call, the last statement src/main.ts compiles to:
 * `import.meta.main&&Deno.exit(await main(Deno.args));` minified. Throws when it is not there.
 */
export function loadOnly(code: string): string {
  const entry = /import\.meta\.main&&Deno\.exit\(await [\w$]+\(Deno\.args\)\);\s*$/;
  if (!entry.test(code)) throw new Error("the bundle does not end with src/main.ts's entry call");
  return code.replace(entry, "\n");
}

/** Bytes under `path` (a folder), 0 when it is missing. */
function folderBytes(path: string): number {
  let n = 0;
  try {
    for (const e of Deno.readDirSync(path)) {
      const full = `${path}/${e.name}`;
      n += e.isDirectory ? folderBytes(full) : Deno.statSync(full).size;
    }
  } catch { /* missing */ }
  return n;
}

export async function daemonFigures(): Promise<Row[]> {
  if (!haveMosquitto()) return [];
  const dir = Deno.makeTempDirSync({ prefix: "linkd-boot-" });
  const broker = await startMosquitto();
  try {
    const js = `${dir}/linkd.js`;
    await bundle(new URL("../../src/main.ts", import.meta.url).pathname, js);
    Deno.writeTextFileSync(`${dir}/hello.js`, 'console.log("hello");\n');
    const linkd = payloadIn(dir, "linkd-payload", js);
    const hello = payloadIn(dir, "hello-payload", `${dir}/hello.js`);
    Deno.writeTextFileSync(`${dir}/load.js`, loadOnly(Deno.readTextFileSync(js)));
    const load = payloadIn(dir, "load-payload", `${dir}/load.js`);
    Deno.writeTextFileSync(`${dir}/bus.pass`, "");
    const text = JSON.stringify({
      flash: { path: "flash.img" },
      keys: { otpPath: "otp.bin" },
      bus: { url: broker.url, passwordFile: "bus.pass" },
      display: { outputs: ["voice", "segment", "screen"] },
    });
    Deno.writeTextFileSync(`${dir}/linkd.json`, text);
    const d = Device.open(parseConfig(text, `${dir}/linkd.json`));
    try {
      // Signed by a line key, as the factory line does: the boot reads a signed identity.
      provision(d, {
        serial: "SN-BOOT-1",
        productId: "speaker",
        clientId: "cid",
        lineSigner: seedSigner(new Uint8Array(32).fill(0x5a)),
      }, Date.now);
      const now = Date.now();
      d.vault().put(
        RecordType.TOKENS,
        encodeTokenRecord({
          access_token: "Atza|" + "a".repeat(900),
          refresh_token: "Atzr|" + "r".repeat(900),
          token_type: "bearer",
          scopes: ["alexa:all"],
          expires_in: 3600,
          obtained_at: now,
          expires_at: now + 24 * 3600_000, // valid for the whole bench
          client_id: "cid",
        }),
      );
    } finally {
      d.close();
    }
    const bootOnce = async (cpu: number | null): Promise<number> => {
      const sub = new Deno.Command("mosquitto_sub", {
        args: clientArgs(broker, "-C", "1", "-t", "linkd/token", "-F", "%U"),
        stdout: "piped",
        stderr: "null",
      }).spawn();
      await new Promise((r) => setTimeout(r, 200));
      const t0 = wallMs();
      const [cmd, args] = pinned(cpu, [linkd.bin, "run", "--config", `${dir}/linkd.json`]);
      const daemon = new Deno.Command(cmd, {
        args,
        cwd: dir,
        env: { DENO_DIR: linkd.cache },
        stdout: "null",
        stderr: "null",
      }).spawn();
      const got = await sub.output();
      const ms = Number(new TextDecoder().decode(got.stdout).trim()) * 1000 - t0;
      daemon.kill("SIGTERM");
      await daemon.status;
      return ms;
    };
    const exitOnce = async (
      payload: { bin: string; cache: string },
      cpu: number | null,
    ): Promise<number> => {
      // The same launcher, runtime and flags (`run` picks the daemon's V8 flags; hello ignores it).
      const [cmd, args] = pinned(cpu, [payload.bin, "run"]);
      const t0 = wallMs();
      const r = await new Deno.Command(cmd, {
        args,
        env: { DENO_DIR: payload.cache },
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!r.success) throw new Error(`${payload.bin}: ${new TextDecoder().decode(r.stderr)}`);
      return wallMs() - t0;
    };
    const helloOnce = (cpu: number | null) => exitOnce(hello, cpu);
    const cpus = pinnableCpus();
    const cpuOf = (i: number) => (cpus === 0 ? null : i % cpus);
    // One of each first (V8's code cache is written on a first run, as on a speaker's first
    // boot), then pairs.
    await bootOnce(cpuOf(0));
    await helloOnce(cpuOf(0));
    await exitOnce(load, cpuOf(0));
    const boot: number[] = [];
    const bare: number[] = [];
    const loads: number[] = [];
    const ratios: number[] = [];
    const loadRatios: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      boot.push(await bootOnce(cpuOf(i)));
      bare.push(await helloOnce(cpuOf(i)));
      loads.push(await exitOnce(load, cpuOf(i)));
      ratios.push(boot.at(-1)! / bare.at(-1)!);
      loadRatios.push(loads.at(-1)! / bare.at(-1)!);
    }
    const ratio = median(ratios);
    const how = cpus === 0 ? "unpinned" : `pairs pinned to one CPU, ${cpus} CPUs in turn`;
    return [
      {
        area: "daemon",
        metric:
          `boot to first token on the bus from the payload, sealed valid token (ms, median of ${RUNS}, ${how})`,
        value: median(boot).toFixed(0),
        goal: "",
      },
      {
        area: "daemon",
        metric: "the same payload running a hello-world (ms, median)",
        value: median(bare).toFixed(0),
        goal: "",
      },
      {
        area: "daemon",
        metric: "boot over hello-world (median of the pairs' ratios)",
        value: `${ratio.toFixed(2)}x`,
        goal: "<= 1.5x",
        met: ratio <= 1.5,
      },
      {
        area: "daemon",
        metric: "the same payload loading linkd.js without running it, to exit (ms, median)",
        value: median(loads).toFixed(0),
        goal: "",
      },
      {
        area: "daemon",
        metric: "linkd.js loaded, not run, over hello-world (median of the ratios)",
        value: `${median(loadRatios).toFixed(2)}x`,
        goal: "",
      },
      {
        area: "daemon",
        metric: "bundle size (target/linkd.js, minified)",
        value: `${(Deno.statSync(js).size / 1024).toFixed(0)} KiB`,
        goal: "",
      },
      {
        area: "daemon",
        metric: "V8 code cache of linkd.js (DENO_DIR after the boots)",
        value: `${(folderBytes(linkd.cache) / 1024).toFixed(0)} KiB`,
        goal: "",
      },
    ];
  } finally {
    await broker.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}
