/**
 * Child process of the memory bench. Args: mode, dir, broker url, codepair url, token url,
 * client, cycles.
 *
 * - `setup`: provisions the device in `dir` and links it against the local authorization
 *   server in real time (the server paces polls in real time), then exits. Not measured: a
 *   speaker links once, in an earlier boot.
 * - `run`: the daemon as `linkd run` starts it (runDaemon: sealed store, bus on mosquitto,
 *   link controller), booting from the sealed token, then through `cycles` refreshes of
 *   short-lived tokens on fake time; prints its peak resident memory (VmHWM) as JSON.
 */
import { parseConfig } from "../../src/config.ts";
import { systemClock } from "../../src/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { LinkController } from "../../src/link/controller.ts";
import { runDaemon } from "../../src/daemon/run.ts";
import { Device } from "../../src/device.ts";
import type { Fetch } from "../../src/auth/types.ts";
import { http1Fetch } from "../../src/net/http1.ts";
import { drive, readInFull } from "../support/drive.ts";
import { seedSigner } from "../../src/provision/line_signer.ts";

const [mode, dir, brokerUrl, codepairUrl, tokenUrl, client, cyclesArg] = Deno.args as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const text = JSON.stringify({
  flash: { path: "flash.img" },
  keys: { otpPath: "otp.bin" },
  auth: { codepairUrl, tokenUrl },
  bus: { url: brokerUrl, passwordFile: "bus.pass" },
  display: { outputs: ["voice", "segment", "screen"] },
});
const config = parseConfig(text, `${dir}/linkd.json`);

if (mode === "setup") {
  Deno.writeTextFileSync(`${dir}/bus.pass`, "");
  Deno.writeTextFileSync(`${dir}/linkd.json`, text);
  // Loaded here only: `linkd run` never evaluates the provisioning code (src/cli/main.ts loads
  // each command's own modules), so the measured run must not either.
  const { provision } = await import("../../src/provision/provision.ts");
  const d = Device.open(config);
  provision(d, {
    serial: "SN-MEM-1",
    productId: "speaker",
    clientId: client,
    lineSigner: seedSigner(new Uint8Array(32).fill(0x5a)), // signed, as by the factory line
  }, Date.now);
  const linker = new LinkController({
    vault: d.vault(),
    identity: { clientId: client, productId: "speaker", serial: "SN-MEM-1" },
    auth: config.auth,
    fetch,
    clock: systemClock,
    random: Math.random,
  });
  await linker.start();
  while (linker.state.state !== "linked") await new Promise((r) => setTimeout(r, 50));
  await linker.stop();
  d.close();
  Deno.exit(0);
}

const cycles = Number(cyclesArg);
const clock = new FakeClock({ wall: Date.now() });
// Counts requests in flight (for drive) and refreshes, and keeps nothing else: a log of every
// request would be the harness's memory, not the daemon's.
let inflight = 0;
let refreshCount = 0;
const io = {
  get inflight() {
    return inflight;
  },
  fetch: (async (input, init) => {
    inflight++;
    try {
      if (typeof init?.body === "string" && init.body.includes("grant_type=refresh_token")) {
        refreshCount++;
      }
      // The daemon's default fetch; answered means answered in full.
      return await readInFull(await http1Fetch(input, init));
    } finally {
      inflight--;
    }
  }) as Fetch,
};
const stop = new AbortController();
let ready: () => void = () => {};
const isReady = new Promise<void>((r) => (ready = r));
const running = runDaemon({
  config,
  signal: stop.signal,
  log: () => {},
  clock,
  fetch: io.fetch,
  onReady: ready,
});
await isReady; // booted from the sealed token, on the bus: now let time run
const refreshes = () => refreshCount;
try {
  await drive(clock, io, () => refreshes() >= cycles, {
    maxMs: cycles * 3600_000,
    label: `${cycles} refreshes`,
  });
} catch (e) {
  console.error(`after ${refreshes()} refreshes: ${(e as Error).message}`);
  throw e;
}
stop.abort();
const code = await running;
const status = Deno.readTextFileSync("/proc/self/status");
const kb = (k: string) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
console.log(
  JSON.stringify({ code, refreshes: refreshes(), hwmKb: kb("VmHWM"), rssKb: kb("VmRSS") }),
);
Deno.exit(0);
