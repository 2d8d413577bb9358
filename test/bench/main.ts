/**
 * `deno task bench`: linkd's measured figures, printed as a table (and saved as JSON to
 * target/bench.json). Nothing here asserts on time; the goals are printed beside the figures.
 */
import { storeFigures } from "./store_bench.ts";
import { sealFigures } from "./seal_bench.ts";
import { provisionFigures } from "./provision_bench.ts";
import { ledgerFigures } from "./ledger_bench.ts";
import { linkFigures } from "./link_bench.ts";
import { busFigures } from "./bus_bench.ts";
import { daemonFigures } from "./daemon_bench.ts";
import { memoryFigures } from "./memory_bench.ts";

export interface Row {
  area: string;
  metric: string;
  value: string;
  goal: string;
  met?: boolean;
}

const rows: Row[] = [];
const t0 = performance.now();
rows.push(...storeFigures());
rows.push(...sealFigures());
rows.push(...provisionFigures());
rows.push(...(await ledgerFigures()));
rows.push(...(await linkFigures()));
rows.push(...(await busFigures()));
rows.push(...(await daemonFigures()));
rows.push(...(await memoryFigures()));

const head: Row = { area: "area", metric: "metric", value: "value", goal: "goal" };
const width = (k: keyof Row) => Math.max(...[head, ...rows].map((r) => String(r[k]).length));
const line = (r: Row) =>
  `| ${r.area.padEnd(width("area"))} | ${r.metric.padEnd(width("metric"))} | ${
    r.value.padStart(width("value"))
  } | ${r.goal.padEnd(width("goal"))} | ${r.met === undefined ? "  " : r.met ? "ok" : "NO"} |`;
console.log(line(head));
console.log(
  line({ area: "-", metric: "-", value: "-", goal: "-" }).replace(/[ -]/g, "-").replace(
    /\|-/g,
    "|-",
  ),
);
for (const r of rows) console.log(line(r));
console.log(
  `(${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s, Deno ${Deno.version.deno}, ${Deno.build.target})`,
);
try {
  Deno.mkdirSync(new URL("../../target", import.meta.url), { recursive: true });
  Deno.writeTextFileSync(
    new URL("../../target/bench.json", import.meta.url),
    JSON.stringify(
      { at: new Date().toISOString(), rows },
      null,
      2,
    ),
  );
} catch {
  // the table on stdout is what counts
}
