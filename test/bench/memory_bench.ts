/**
 * Peak memory of the daemon after 1000 refresh cycles, beside the bare runtime's. The daemon
 * runs in refresh_child.ts on fake time (1000 real refreshes of one-minute tokens would take
 * half a day), bundled and started like the shipped linkd.
 */
import { startAuthServer } from "../../dev/authserver/server.ts";
import { bundle } from "../../scripts/bundle.ts";
import { runArgs } from "../../scripts/runtime.ts";
import { haveMosquitto, startMosquitto } from "../support/broker.ts";
import type { Row } from "./main.ts";

const CYCLES = 1000;
const CLIENT = "amzn1.application-oa2-client.membench";

async function peakOf(args: string[], report = true): Promise<Record<string, number>> {
  const r = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(r.stdout).trim().split("\n").at(-1) ?? "";
  if (!r.success) {
    throw new Error(
      `memory bench child failed: ${new TextDecoder().decode(r.stderr).slice(0, 800)}`,
    );
  }
  return report ? JSON.parse(text) : {};
}

export async function memoryFigures(): Promise<Row[]> {
  if (!haveMosquitto()) return [];
  const dir = Deno.makeTempDirSync({ prefix: "linkd-mem-" });
  const broker = await startMosquitto();
  const auth = startAuthServer({
    autoApprove: true,
    clients: [{ clientId: CLIENT, tokenLifetime: 60, interval: 1, refreshGrace: 3600 }],
  });
  try {
    // The harness is bundled like linkd and run with the launcher's flags: what ships.
    const here = new URL(".", import.meta.url).pathname;
    const js = `${dir}/refresh_child.js`;
    await bundle(`${here}refresh_child.ts`, js);
    // -A for the launcher's permissions: reading /proc/self/status needs it; memory is the same.
    const child = (mode: string, cycles: number) => [
      "run",
      ...runArgs({ allowAll: true, daemon: true }),
      js,
      mode,
      dir,
      broker.url,
      auth.lwa.codepairUrl,
      auth.lwa.tokenUrl,
      CLIENT,
      String(cycles),
    ];
    await peakOf(child("setup", 0), false); // provisioned and linked, as in an earlier boot
    // One boot and refresh first, as on a speaker every boot after the first: V8's code cache
    // for the bundle is written (a cold cache's compile is a one-time peak, not the daemon's).
    await peakOf(child("run", 1));
    const linkd = await peakOf(child("run", CYCLES));
    Deno.writeTextFileSync(
      `${dir}/bare.js`,
      'const s = Deno.readTextFileSync("/proc/self/status"); console.log(JSON.stringify({ hwmKb: Number(s.match(/^VmHWM:\\s+(\\d+)/m)[1]) }));\n',
    );
    const bare = await peakOf([
      "run",
      ...runArgs({ allowAll: true, daemon: true }),
      `${dir}/bare.js`,
    ]); // same flags: a fair floor
    const over = (linkd.hwmKb! - bare.hwmKb!) / 1024;
    return [
      {
        area: "daemon",
        metric: `peak memory after ${linkd.refreshes} refresh cycles (MiB, VmHWM)`,
        value: (linkd.hwmKb! / 1024).toFixed(1),
        goal: "",
      },
      {
        area: "daemon",
        metric: "bare runtime peak memory (MiB, VmHWM)",
        value: (bare.hwmKb! / 1024).toFixed(1),
        goal: "",
      },
      {
        area: "daemon",
        metric: "daemon over bare runtime (MiB)",
        value: over.toFixed(1),
        goal: "<= 12",
        met: over <= 12 && linkd.refreshes! >= CYCLES,
      },
    ];
  } finally {
    await auth.close();
    await broker.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}
