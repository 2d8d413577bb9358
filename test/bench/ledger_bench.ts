/**
 * The factory line at plant scale (issue 14): devices per second of a station without a ledger,
 * with the SQLite ledger, with the PostgreSQL ledger, and with the line key in an HSM (SoftHSM2);
 * the ledger's cost as a share of the station's throughput (goal: under 10%); and two stations
 * at once on one PostgreSQL, as two processes fed from overlapping serial lists.
 *
 * Each station provisions as ledger_station.ts says (lineCommand's order, in process). The
 * in-process variants take turns device by device, so the noise of the shared machine hits all
 * alike. The two-station run is checked afterwards: every serial confirmed once in the ledger,
 * at the station that says it provisioned it, the counts adding up; a run that does not hold
 * throws. PostgreSQL and HSM variants are left out (no rows) where the tools are missing.
 */
import nacl from "tweetnacl";
import type { Ledger } from "../../src/ledger/ledger.ts";
import { openLedger } from "../../src/ledger/open.ts";
import { type LineSigner, openLineSigner, seedSigner } from "../../src/provision/line_signer.ts";
import { havePostgres, type Postgres, startPostgres } from "../support/postgres.ts";
import { haveSoftHsm, type SoftHsm, startSoftHsm } from "../support/softhsm.ts";
import { runStation, serialOf, type StationRun } from "./ledger_station.ts";
import type { Row } from "./main.ts";
import { bundle } from "../../scripts/bundle.ts";
import { runArgs } from "../../scripts/runtime.ts";
import { median, pinnableCpus, pinned } from "./timing.ts";

/**
 * Rounds of the in-process variants, each variant provisioning PER_ROUND devices in a round, in
 * an order that turns each round (machine noise and the garbage collector hit all alike).
 */
const ROUNDS = 60;
const PER_ROUND = 1;
/** Serials of the two-station run: one station takes 0..59 upwards, the other 79..20 down. */
const POOL = 80;
const OVERLAP_FROM = 20;
const ONE_STATION_TO = 59;

interface Variant {
  name: string;
  ledger: Ledger | null;
  signer: LineSigner;
  devices: number;
  ms: number;
  /** Of `ms`, the time spent in the ledger's reserve and confirm. */
  ledgerMs: number;
}

function rate(v: Variant): number {
  return v.devices / (v.ms / 1000);
}

/** The ledger's cost: the share of the baseline's throughput lost with it, in %. */
function cost(base: Variant, withLedger: Variant): number {
  return (1 - rate(withLedger) / rate(base)) * 100;
}

export async function ledgerFigures(): Promise<Row[]> {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-ledger-bench-" });
  const seed = seedSigner(nacl.randomBytes(32));
  let pg: Postgres | null = null;
  let hsm: SoftHsm | null = null;
  let hsmSigner: LineSigner | null = null;
  const ledgers: Ledger[] = [];
  try {
    const sqlite = await openLedger(`sqlite:${dir}/ledger.db`);
    ledgers.push(sqlite);
    let postgres: Ledger | null = null;
    if (havePostgres()) {
      pg = await startPostgres();
      postgres = await openLedger(pg.url);
      ledgers.push(postgres);
    }
    if (haveSoftHsm()) {
      hsm = await startSoftHsm();
      hsmSigner = openLineSigner(hsm.uri);
    }
    const variant = (name: string, ledger: Ledger | null, signer: LineSigner): Variant => ({
      name,
      ledger,
      signer,
      devices: 0,
      ms: 0,
      ledgerMs: 0,
    });
    const variants: Variant[] = [variant("base", null, seed), variant("sqlite", sqlite, seed)];
    if (postgres) variants.push(variant("pg", postgres, seed));
    if (hsmSigner) variants.push(variant("hsm", null, hsmSigner));
    if (hsmSigner && postgres) variants.push(variant("hsm-pg", postgres, hsmSigner));
    // A warm-up round (not counted), then the rounds, the variants taking turns.
    for (let round = -1; round < ROUNDS; round++) {
      const turn = Math.max(round, 0) % variants.length;
      for (const v of [...variants.slice(turn), ...variants.slice(0, turn)]) {
        const n = round < 0 ? 3 : PER_ROUND;
        const prefix = `${v.name.toUpperCase()}-${round < 0 ? "W" : "R"}`;
        const serials = Array.from(
          { length: n },
          (_, i) => serialOf(prefix, Math.max(round, 0) * n + i),
        );
        const r = await runStation(dir, `st-${v.name}`, serials, v.ledger, v.signer);
        if (r.provisioned.length !== n) {
          throw new Error(`Cannot bench ${v.name}: the ledger had ${r.taken} of its serials`);
        }
        if (round < 0) continue;
        v.devices += n;
        v.ms += r.end - r.start;
        v.ledgerMs += r.ledgerMs;
      }
    }
    const by = (name: string) => variants.find((v) => v.name === name);
    const base = by("base")!;
    const row = (metric: string, v: Variant): Row => ({
      area: "ledger",
      metric: `${metric} (devices/s, ${v.devices} devices)`,
      value: rate(v).toFixed(1),
      goal: "",
    });
    const costRow = (metric: string, v: Variant): Row => {
      const c = cost(base, v);
      return {
        area: "ledger",
        metric: `${metric} (% of the in-process loop's devices/s; ${
          (v.ledgerMs / v.devices).toFixed(1)
        } ms a device in reserve + confirm)`,
        value: c.toFixed(1),
        goal: "",
      };
    };
    const rows: Row[] = [row("one station, no ledger, seed signer", base)];
    rows.push(row("one station, SQLite ledger", by("sqlite")!));
    const pgV = by("pg");
    if (pgV) rows.push(row("one station, PostgreSQL ledger", pgV));
    rows.push(costRow("ledger cost, SQLite", by("sqlite")!));
    if (pgV) rows.push(costRow("ledger cost, PostgreSQL", pgV));
    rows.push(...await cliStation(dir, pg));
    if (pg !== null && postgres !== null) rows.push(...await twoStations(dir, pg, postgres));
    const hsmV = by("hsm");
    if (hsmV) rows.push(row("one station, HSM signer (SoftHSM2), no ledger", hsmV));
    const hsmPg = by("hsm-pg");
    if (hsmV && hsmPg) {
      const c = cost(hsmV, hsmPg).toFixed(1);
      rows.push(row(`one station, HSM signer, PostgreSQL ledger (ledger cost ${c}%)`, hsmPg));
    }
    return rows;
  } finally {
    for (const l of ledgers) await l.close().catch(() => {});
    seed.close();
    hsmSigner?.close();
    hsm?.cleanup();
    await pg?.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Devices per variant of the station as it runs, one `linkd provision` process per device. */
const CLI_ROUNDS = 15;

/**
 * A station as it runs: one `linkd provision` process per device (the bundle with the
 * launcher's flags and its own code cache, as the firmware payload on a station PC), without a
 * ledger, with SQLite and with PostgreSQL (its connection and SCRAM login included, once per
 * device), the variants taking turns. The goal row: the ledger's cost in this throughput.
 *
 * Each round runs one device of every variant pinned to the same CPU, the CPU changing from round
 * to round (as the boot bench's pairs: this machine's two CPUs differ in speed, and an unpinned
 * process lands on either). The cost is the median over rounds of 1 - (the variant's device time
 * over the no-ledger device's time in the same round); the devices/s rows are the totals.
 */
async function cliStation(dir: string, pg: Postgres | null): Promise<Row[]> {
  const js = `${dir}/linkd.js`;
  await bundle(new URL("../../src/main.ts", import.meta.url).pathname, js);
  const key = `${dir}/cli-line.key`;
  Deno.writeFileSync(key, nacl.randomBytes(32), { mode: 0o600 });
  const cache = `${dir}/cli-cache`;
  Deno.mkdirSync(cache);
  const variants: {
    name: string;
    ledger: string[];
    ms: number;
    devices: number;
    last: number;
    costs: number[];
  }[] = [
    { name: "none", ledger: [], ms: 0, devices: 0, last: 0, costs: [] },
    {
      name: "sqlite",
      ledger: ["--ledger", `sqlite:${dir}/cli.db`, "--station", "st-cli"],
      ms: 0,
      devices: 0,
      last: 0,
      costs: [],
    },
  ];
  if (pg) {
    variants.push({
      name: "pg",
      ledger: ["--ledger", pg.url, "--station", "st-cli"],
      ms: 0,
      devices: 0,
      last: 0,
      costs: [],
    });
  }
  const cpus = pinnableCpus();
  let n = 0;
  const once = async (v: (typeof variants)[number], count: boolean, cpu: number | null) => {
    const folder = `${dir}/cli-dev-${n++}`;
    Deno.mkdirSync(folder);
    Deno.writeTextFileSync(
      `${folder}/linkd.json`,
      JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }),
    );
    const [program, args] = pinned(cpu, [
      Deno.execPath(),
      "run",
      "--cached-only",
      ...runArgs(),
      js,
      "provision",
      "--config",
      `${folder}/linkd.json`,
      "--serial",
      `SN-CLI-${v.name}-${n}`,
      "--product-id",
      "speaker",
      "--client-id",
      "amzn1.application-oa2-client.bench",
      "--line-key",
      key,
      ...v.ledger,
    ]);
    const t0 = performance.now();
    const out = await new Deno.Command(program, {
      args,
      env: { DENO_DIR: cache },
      stdout: "null",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t0;
    if (!out.success) {
      throw new Error(`Cannot bench ${v.name}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    v.last = ms;
    if (count) {
      v.ms += ms;
      v.devices++;
    }
  };
  // code cache, tables
  for (const v of variants) for (let i = 0; i < 2; i++) await once(v, false, cpus ? 0 : null);
  for (let round = 0; round < CLI_ROUNDS; round++) {
    const turn = round % variants.length;
    const cpu = cpus === 0 ? null : round % cpus;
    for (const v of [...variants.slice(turn), ...variants.slice(0, turn)]) await once(v, true, cpu);
    for (const v of variants.slice(1)) v.costs.push((1 - variants[0]!.last / v.last) * 100);
  }
  const rate = (v: (typeof variants)[number]) => v.devices / (v.ms / 1000);
  const base = variants[0]!;
  const rows: Row[] = variants.map((v) => ({
    area: "ledger",
    metric: `a station as it runs (one linkd provision process per device), ${
      v.name === "none" ? "no ledger" : v.name === "sqlite" ? "SQLite ledger" : "PostgreSQL ledger"
    } (devices/s, ${v.devices})`,
    value: rate(v).toFixed(2),
    goal: "",
  }));
  const how = cpus === 0 ? "unpinned" : `rounds pinned to one CPU, ${cpus} CPUs in turn`;
  for (const v of variants.slice(1)) {
    const c = median(v.costs);
    rows.push({
      area: "ledger",
      metric: `ledger cost in a station's throughput, ${
        v.name === "sqlite" ? "SQLite" : "PostgreSQL"
      } (%, median of ${v.costs.length} rounds, ${how}; from the totals ${
        ((1 - rate(v) / rate(base)) * 100).toFixed(1)
      })`,
      value: c.toFixed(1),
      goal: "< 10%",
      met: c < 10,
    });
  }
  return rows;
}

/** Two station processes on one PostgreSQL, overlapping serials; checked against the ledger. */
async function twoStations(dir: string, pg: Postgres, ledger: Ledger): Promise<Row[]> {
  const script = new URL("./ledger_station.ts", import.meta.url).pathname;
  const lists: [string, number, number][] = [
    ["st-a", 0, ONE_STATION_TO],
    ["st-b", POOL - 1, OVERLAP_FROM],
  ];
  const children = lists.map(([station, first, last]) => {
    const folder = `${dir}/${station}`;
    Deno.mkdirSync(folder);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, station, String(first), String(last), pg.url, folder],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const stderr = new Response(child.stderr).text();
    return { station, child, lines, stderr, text: "" };
  });
  const nextLine = async (c: (typeof children)[number]): Promise<string> => {
    for (;;) {
      const nl = c.text.indexOf("\n");
      if (nl >= 0) {
        const line = c.text.slice(0, nl);
        c.text = c.text.slice(nl + 1);
        return line;
      }
      const { value, done } = await c.lines.read();
      if (done) {
        throw new Error(`station ${c.station} ended early: ${(await c.stderr).trim()}`);
      }
      c.text += value;
    }
  };
  let runs: (StationRun & { station: string })[];
  try {
    for (const c of children) {
      const line = await nextLine(c);
      if (line !== "ready") throw new Error(`station ${c.station}: ${line}`);
    }
    const go = new TextEncoder().encode("go\n");
    for (const c of children) {
      const w = c.child.stdin.getWriter();
      await w.write(go);
      await w.close();
    }
    runs = await Promise.all(children.map(async (c) => JSON.parse(await nextLine(c))));
  } finally {
    for (const c of children) {
      try {
        c.child.kill("SIGKILL");
      } catch { /* ended */ }
      await c.child.status;
      await c.stderr.catch(() => "");
    }
  }

  // Every serial of the pool on exactly one device, at the station that says so.
  const rows = (await ledger.rows()).filter((r) => r.serial.startsWith("ST-"));
  const pool = Array.from({ length: POOL }, (_, n) => serialOf("ST", n));
  const provisioned = runs.flatMap((r) => r.provisioned);
  const keys = rows.flatMap((r) => r.device_public_key ? [r.device_public_key.join(",")] : []);
  const problems: string[] = [];
  if (rows.length !== POOL || new Set(rows.map((r) => r.serial)).size !== POOL) {
    problems.push(`the ledger has ${rows.length} rows for ${POOL} serials`);
  }
  if (rows.some((r) => r.provisioned_at === null || r.device_public_key === null)) {
    problems.push("a reservation was left unconfirmed");
  }
  if (new Set(keys).size !== keys.length) problems.push("a device key is recorded twice");
  if (provisioned.length !== POOL || new Set(provisioned).size !== POOL) {
    problems.push(`the stations provisioned ${provisioned.length} devices for ${POOL} serials`);
  }
  if (!pool.every((s) => provisioned.includes(s))) problems.push("a serial was not provisioned");
  for (const r of runs) {
    const listed = r.station === "st-a" ? ONE_STATION_TO + 1 : POOL - OVERLAP_FROM;
    if (r.provisioned.length + r.taken !== listed) {
      problems.push(`station ${r.station}: ${r.provisioned.length} + ${r.taken} of ${listed}`);
    }
    const atStation = rows.filter((row) => row.station === r.station).map((row) => row.serial);
    if (atStation.sort().join() !== [...r.provisioned].sort().join()) {
      problems.push(`station ${r.station}: the ledger disagrees on its devices`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`Cannot measure two stations: ${problems.join("; ")}`);
  }

  const start = Math.min(...runs.map((r) => r.start));
  const end = Math.max(...runs.map((r) => r.end));
  const out: Row[] = [{
    area: "ledger",
    metric:
      `two stations on one PostgreSQL, overlapping serials, both (devices/s, ${POOL} devices)`,
    value: (POOL / ((end - start) / 1000)).toFixed(1),
    goal: "",
  }];
  for (const r of runs) {
    out.push({
      area: "ledger",
      metric:
        `two stations: station ${r.station} (devices/s, ${r.provisioned.length} devices, ${r.taken} taken skipped)`,
      value: (r.provisioned.length / ((r.end - r.start) / 1000)).toFixed(1),
      goal: "",
    });
  }
  return out;
}
