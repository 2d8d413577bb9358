/**
 * The test command: runs every `*_test.ts` under src/, dev/ and test/ in its own Deno process (so
 * a test that starts a broker or cuts power cannot disturb another), two at a time
 * (LINKD_TEST_JOBS), each with a deadline (LINKD_TEST_TIMEOUT, seconds, default 300), prints
 * each file's uvu output and time, and ends with the line `N passed, N failed`.
 *
 *   deno task test                 all tests
 *   deno task test store seal      only files whose path contains one of the words
 *
 * The counts come from the JSON report each file's child writes (test/support/uvu_child.ts),
 * not from uvu's printed text; a file that crashes, hangs or exits without a report counts as
 * failed (test/support/runner.ts).
 */
import { type FileResult, runFile, summaryLine } from "./support/runner.ts";

const root = new URL("..", import.meta.url).pathname;
const filters = Deno.args;

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "node_modules" && e.name !== "bench") yield* walk(p);
    else if (e.isFile && e.name.endsWith("_test.ts")) yield p;
  }
}

const files: string[] = [];
for (const d of ["src", "dev", "test"]) {
  for await (const f of walk(`${root}${d}`)) {
    const rel = f.slice(root.length);
    if (filters.length === 0 || filters.some((w) => rel.includes(w))) files.push(rel);
  }
}
files.sort();

const reportDir = Deno.makeTempDirSync({ prefix: "linkd-test-reports-" });
const timeoutMs = 1000 * Number(Deno.env.get("LINKD_TEST_TIMEOUT") ?? "300");
const results: FileResult[] = [];
const queue = [...files];
const parallel = Number(Deno.env.get("LINKD_TEST_JOBS") ?? "2");
await Promise.all(
  Array.from({ length: Math.max(1, parallel) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const r = await runFile(f, { cwd: root, reportDir, timeoutMs });
      results.push(r);
      console.log(`── ${r.file} (${(r.ms / 1000).toFixed(1)} s)`);
      console.log(r.output.trimEnd().split("\n").map((l) => `   ${l}`).join("\n"));
      for (const note of r.notes) console.log(`   counted failed: ${note}`);
    }
  }),
);
Deno.removeSync(reportDir, { recursive: true });

for (const r of results) {
  if (!r.failed) continue;
  console.log(`FAILED: ${r.file} (${r.failed})`);
  for (const f of r.failures) {
    console.log(`  ${f.suite ? `${f.suite} › ` : ""}${JSON.stringify(f.test)}: ${f.message}`);
  }
  for (const note of r.notes) console.log(`  ${note}`);
}
if (files.length === 0) console.log("no test files matched");
console.log(summaryLine(results));
Deno.exit(results.some((r) => r.failed > 0) || files.length === 0 ? 1 : 0);
