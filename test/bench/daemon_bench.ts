/**
 * Boot figures of `linkd run` as it ships (the bundle, run with the launcher's flags): from
 * process start to the first token on the bus, with a sealed valid token in flash (no network),
 * beside a bare `deno run` of a hello-world file on the same runtime and flags; and the
 * bundle's size.
 */
import { parseConfig } from "../../src/config.ts";
import { Device } from "../../src/device.ts";
import { provision } from "../../src/provision/provision.ts";
import { RecordType } from "../../src/store/vault.ts";
import { encodeTokenRecord } from "../../src/tokens/token_record.ts";
import { bundle } from "../../scripts/bundle.ts";
import { runArgs } from "../../scripts/runtime.ts";
import { haveMosquitto, startMosquitto } from "../support/broker.ts";
import type { Row } from "./main.ts";

const RUNS = 7;
const wallMs = () => performance.timeOrigin + performance.now();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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
    const bootOnce = async (): Promise<number> => {
      const sub = new Deno.Command("mosquitto_sub", {
        args: [
          "-h",
          "127.0.0.1",
          "-p",
          String(broker.port),
          "-V",
          "5",
          "-C",
          "1",
          "-t",
          "linkd/token",
          "-F",
          "%U",
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      await new Promise((r) => setTimeout(r, 200));
      const t0 = wallMs();
      const daemon = new Deno.Command(Deno.execPath(), {
        args: ["run", "--cached-only", ...runArgs(), js, "run", "--config", `${dir}/linkd.json`],
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
    const helloOnce = async (): Promise<number> => {
      const t0 = wallMs();
      await new Deno.Command(Deno.execPath(), {
        args: ["run", "--cached-only", ...runArgs(), `${dir}/hello.js`], // same flags
        stdout: "null",
      }).output();
      return wallMs() - t0;
    };
    // One of each first (V8's code cache is written on a first run, as on a speaker's first
    // boot), then alternating, so that a change in the machine's load hits both alike.
    await bootOnce();
    await helloOnce();
    const boot: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      boot.push(await bootOnce());
      bare.push(await helloOnce());
    }
    const ratio = median(boot) / median(bare);
    return [
      {
        area: "daemon",
        metric: `boot to first token on the bus, sealed valid token (ms, median of ${RUNS})`,
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
        metric: "boot over bare runtime",
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
