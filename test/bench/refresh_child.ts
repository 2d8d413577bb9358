/**
 * Child process of the memory bench: the linkd daemon (bus on mosquitto, sealed store, link
 * controller) through `cycles` refreshes of short-lived tokens, on fake time; prints its peak
 * resident memory (VmHWM) as JSON. Args: dir, broker url, codepair url, token url, client, cycles.
 */
import { parseConfig } from "../../src/config.ts";
import { FakeClock, systemClock } from "../../src/clock.ts";
import { LinkController } from "../../src/link/controller.ts";
import { runDaemon } from "../../src/daemon/run.ts";
import { Device } from "../../src/device.ts";
import { provision } from "../../src/provision/provision.ts";
import { drive, trackFetch } from "../support/drive.ts";

const [dir, brokerUrl, codepairUrl, tokenUrl, client, cyclesArg] = Deno.args as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const cycles = Number(cyclesArg);
Deno.writeTextFileSync(`${dir}/bus.pass`, "");
const text = JSON.stringify({
  flash: { path: "flash.img" },
  keys: { otpPath: "otp.bin" },
  auth: { codepairUrl, tokenUrl },
  bus: { url: brokerUrl, passwordFile: "bus.pass" },
  display: { outputs: ["voice", "segment", "screen"] },
});
Deno.writeTextFileSync(`${dir}/linkd.json`, text);
const config = parseConfig(text, `${dir}/linkd.json`);
// Link once in real time (the server paces polls in real time), then reboot on fake time.
const d = Device.open(config);
provision(d, { serial: "SN-MEM-1", productId: "speaker", clientId: client }, Date.now);
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

const clock = new FakeClock({ wall: Date.now() });
const io = trackFetch(clock);
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
const refreshes = () => io.log.filter((l) => l.form.grant_type === "refresh_token").length;
try {
  await drive(clock, io, () => refreshes() >= cycles, {
    maxMs: cycles * 3600_000,
    label: `${cycles} refreshes`,
  });
} catch (e) {
  const last = io.log.slice(-2).map((l) => `${l.path} ${l.form.grant_type}`);
  console.error(
    `after ${refreshes()} refreshes: ${(e as Error).message}; last ${JSON.stringify(last)}`,
  );
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
