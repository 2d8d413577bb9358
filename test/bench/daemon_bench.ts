/**
 * Boot figures of `linkd run` as it ships (the bundle, run with the launcher's flags): from
 * process start to the first token on the bus, with a sealed valid token in flash (no network),
 * beside a bare `deno run` of a hello-world file on the same runtime and flags; and the
 * bundle's size.
 *
 * The runs go in pairs, a boot then a hello-world, both pinned to the same CPU (`taskset`), the
 * CPU changing from pair to pair. This machine's two virtual CPUs do not run at the same speed
 * (hello-world takes 71 ms on one and 97 ms on the other here), so unpinned runs mix fast and
 * slow and the ratio of medians jumps between 1.2 and 1.9. The ratio reported is the median of
 * the pairs' ratios. Pinning costs the boot a little: V8's helper threads share its CPU.
 */
import { parseConfig } from "../../src/config.ts";
import { Device } from "../../src/device.ts";
import { provision } from "../../src/provision/provision.ts";
import { RecordType } from "../../src/records/types.ts";
import { encodeTokenRecord } from "../../src/records/token.ts";
import { bundle } from "../../scripts/bundle.ts";
import { runArgs } from "../../scripts/runtime.ts";
import { clientArgs, haveMosquitto, startMosquitto } from "../support/broker.ts";
import type { Row } from "./main.ts";

const RUNS = 14;
const wallMs = () => performance.timeOrigin + performance.now();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** `[program, ...args]` pinned to CPU `cpu` when taskset is there (else as is). */
function pinned(cpu: number | null, argv: string[]): [string, string[]] {
  return cpu === null ? [argv[0]!, argv.slice(1)] : ["taskset", ["-c", String(cpu), ...argv]];
}

function haveTaskset(): boolean {
  try {
    return new Deno.Command("taskset", {
      args: ["-c", "0", "true"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function bundleInto(dir: string): Promise<string> {
  const out = `${dir}/linkd.js`;
  await bundle(new URL("../../src/main.ts", import.meta.url).pathname, out);
  return out;
}

export async function daemonFigures(): Promise<Row[]> {
  if (!haveMosquitto()) return [];
  const dir = Deno.makeTempDirSync({ prefix: "linkd-boot-" });
  const broker = await startMosquitto();
  try {
    const js = await bundleInto(dir);
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
        lineSeed: new Uint8Array(32).fill(0x5a),
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
      const [cmd, args] = pinned(cpu, [
        Deno.execPath(),
        ...["run", "--cached-only", ...runArgs(), js, "run", "--config", `${dir}/linkd.json`],
      ]);
      const daemon = new Deno.Command(cmd, {
        args,
        cwd: dir,
        stdout: "null",
        stderr: "null",
      }).spawn();
      const got = await sub.output();
      const ms = Number(new TextDecoder().decode(got.stdout).trim()) * 1000 - t0;
      daemon.kill("SIGTERM");
      await daemon.status;
      return ms;
    };
    Deno.writeTextFileSync(`${dir}/hello.js`, 'console.log("hello");\n');
    const helloOnce = async (cpu: number | null): Promise<number> => {
      const [cmd, args] = pinned(cpu, [
        Deno.execPath(),
        ...["run", "--cached-only", ...runArgs(), `${dir}/hello.js`], // same flags
      ]);
      const t0 = wallMs();
      await new Deno.Command(cmd, { args, stdout: "null" }).output();
      return wallMs() - t0;
    };
    const cpus = haveTaskset() ? Math.max(1, navigator.hardwareConcurrency) : 0;
    const cpuOf = (i: number) => (cpus === 0 ? null : i % cpus);
    // One of each first (V8's code cache is written on a first run, as on a speaker's first
    // boot), then pairs.
    await bootOnce(cpuOf(0));
    await helloOnce(cpuOf(0));
    const boot: number[] = [];
    const bare: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      boot.push(await bootOnce(cpuOf(i)));
      bare.push(await helloOnce(cpuOf(i)));
      ratios.push(boot.at(-1)! / bare.at(-1)!);
    }
    const ratio = median(ratios);
    const how = cpus === 0 ? "unpinned" : `pairs pinned to one CPU, ${cpus} CPUs in turn`;
    return [
      {
        area: "daemon",
        metric:
          `boot to first token on the bus, sealed valid token (ms, median of ${RUNS}, ${how})`,
        value: median(boot).toFixed(0),
        goal: "",
      },
      {
        area: "daemon",
        metric: "bare `deno run` of hello-world (ms, median)",
        value: median(bare).toFixed(0),
        goal: "",
      },
      {
        area: "daemon",
        metric: "boot over bare runtime (median of the pairs' ratios)",
        value: `${ratio.toFixed(2)}x`,
        goal: "<= 1.5x",
        met: ratio <= 1.5,
      },
      {
        area: "daemon",
        metric: "bundle size (target/linkd.js, minified)",
        value: `${(Deno.statSync(js).size / 1024).toFixed(0)} KiB`,
        goal: "",
      },
    ];
  } finally {
    await broker.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}
