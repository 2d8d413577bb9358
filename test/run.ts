/**
 * The test command: runs every `*_test.ts` under src/ and test/ in its own Deno process (so a
 * test that starts a broker or cuts power cannot disturb another), two at a time, prints each
 * file's uvu report, and ends with the line `N passed, N failed`.
 *
 *   deno task test                 all tests
 *   deno task test store seal      only files whose path contains one of the words
 */
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
for (const d of ["src", "test"]) {
  for await (const f of walk(`${root}${d}`)) {
    const rel = f.slice(root.length);
    if (filters.length === 0 || filters.some((w) => rel.includes(w))) files.push(rel);
  }
}
files.sort();

interface Result {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  output: string;
  ms: number;
}

async function runFile(file: string): Promise<Result> {
  const t0 = performance.now();
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", file],
    cwd: root,
    env: { NO_COLOR: "1", LINKD_TEST: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const num = (label: string) => {
    const all = [...text.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "gm"))];
    return all.length ? Number(all[all.length - 1]![1]) : null;
  };
  const total = num("Total");
  const passed = num("Passed");
  const skipped = num("Skipped") ?? 0;
  let failed: number;
  if (total === null || passed === null) failed = 1; // crashed before reporting
  else failed = total - passed + (out.code !== 0 && total === passed ? 1 : 0);
  return {
    file,
    passed: passed ?? 0,
    failed,
    skipped,
    output: text,
    ms: performance.now() - t0,
  };
}

const results: Result[] = [];
const queue = [...files];
const parallel = Number(Deno.env.get("LINKD_TEST_JOBS") ?? "2");
await Promise.all(
  Array.from({ length: Math.max(1, parallel) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const r = await runFile(f);
      results.push(r);
      console.log(`── ${r.file} (${(r.ms / 1000).toFixed(1)} s)`);
      console.log(r.output.trimEnd().split("\n").map((l) => `   ${l}`).join("\n"));
    }
  }),
);

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
for (const r of results) if (r.failed) console.log(`FAILED: ${r.file} (${r.failed})`);
if (files.length === 0) console.log("no test files matched");
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(failed > 0 || files.length === 0 ? 1 : 0);
