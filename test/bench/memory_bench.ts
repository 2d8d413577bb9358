/**
 * Peak memory of the daemon after 1000 refresh cycles, beside the bare runtime's. The daemon
 * runs in refresh_child.ts on fake time (1000 real refreshes of one-minute tokens would take
 * half a day), bundled and started like the shipped linkd.
 *
 * In the same run, the runtime's floor: memory_floor.ts does the runtime work of 1000 refresh
 * cycles (an MQTT connection, a form POST over a new TCP connection, timers, a synced flash
 * write, a collection) with none of linkd's code. The daemon's figure over the bare runtime is
 * the goal's; the floor says how much of it the runtime takes whatever linkd does.
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

/**
 * The floor's peak: memory_floor.ts (bundled as `js`) against mosquitto on `brokerPort` and a
 * token endpoint served here, whose answer has the size of the local authorization server's
 * (1000-character tokens).
 */
async function floorPeak(
  js: string,
  brokerPort: number,
  dir: string,
): Promise<Record<string, number>> {
  const answer = JSON.stringify({
    access_token: "Atza|" + "a".repeat(995),
    refresh_token: "Atzr|" + "r".repeat(995),
    token_type: "bearer",
    expires_in: 60,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    return new Response(answer, { headers: { "content-type": "application/json" } });
  });
  try {
    const flash = `${dir}/floor-flash.img`;
    Deno.writeFileSync(flash, new Uint8Array(64 * 1024).fill(0xff));
    return await peakOf([
      "run",
      ...runArgs({ allowAll: true, daemon: true }),
      js,
      String(brokerPort),
      String(server.addr.port),
      flash,
      String(CYCLES),
    ]);
  } finally {
    await server.shutdown();
  }
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
    const floorJs = `${dir}/memory_floor.js`;
    await bundle(`${here}memory_floor.ts`, floorJs);
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
    const floor = await floorPeak(floorJs, broker.port, dir);
    const over = (linkd.hwmKb! - bare.hwmKb!) / 1024;
    const floorOver = (floor.hwmKb! - bare.hwmKb!) / 1024;
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
      {
        area: "daemon",
        metric:
          `runtime floor over bare runtime: the runtime work of ${floor.cycles} refresh cycles, no linkd code (MiB)`,
        value: floorOver.toFixed(1),
        goal: "",
      },
      {
        area: "daemon",
        metric: "daemon over the runtime floor: linkd's own share (MiB)",
        value: (over - floorOver).toFixed(1),
        goal: "",
      },
    ];
  } finally {
    await auth.close();
    await broker.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}
