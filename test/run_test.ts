/**
 * Tests of the test runner (test/run.ts, test/support/runner.ts, test/support/uvu_child.ts):
 * fixture test files under test/support/fixtures/ run in their own Deno process as the runner
 * runs them, and are counted from their JSON report: passing suites (with a skip and hooks),
 * failing tests and a throwing `before` hook, a throw while loading, Deno.exit during the
 * tests, a file left running past its deadline, and a file that never calls `test.run()`.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { countFile, type FileResult, runFile, summaryLine } from "./support/runner.ts";

const root = new URL("..", import.meta.url).pathname;
const reportDir = Deno.makeTempDirSync({ prefix: "linkd-run-test-" });
test.after(() => {
  Deno.removeSync(reportDir, { recursive: true });
});

const results: FileResult[] = [];
async function fixture(name: string, timeoutMs = 120_000): Promise<FileResult> {
  const r = await runFile(`test/support/fixtures/${name}.ts`, { cwd: root, reportDir, timeoutMs });
  results.push(r);
  return r;
}

test("passing suites: every test counted, the skipped one apart, uvu's output kept", async () => {
  const r = await fixture("passing");
  assert.equal([r.passed, r.failed, r.skipped], [3, 0, 1], r.output);
  assert.equal(r.failures, []);
  assert.equal(r.notes, []);
  assert.match(r.output, /\(1 \/ 1\)/);
  assert.match(r.output, /second.*\(2 \/ 2\)/);
  assert.match(r.output, /Total:\s+3/);
});

test("failing tests are counted with their names and messages; a throwing before hook fails its suite", async () => {
  const r = await fixture("failing");
  assert.equal([r.passed, r.failed, r.skipped], [1, 4, 0], r.output);
  assert.equal(r.failures.slice(0, 2), [
    { suite: "", test: "compares", message: "one and one make three" },
    { suite: "", test: "throws", message: "broken on purpose" },
  ]);
  assert.is(r.failures.length, 3);
  assert.match(r.failures[2]!.test, /2 of 2 tests did not run/);
  assert.equal(r.notes, []);
});

test("a file that throws while it loads counts as one failure, with the error", async () => {
  const r = await fixture("throws_at_import");
  assert.equal([r.passed, r.failed], [0, 1], r.output);
  assert.is(r.failures.length, 1);
  assert.is(r.failures[0]!.test, "(loading the file)");
  assert.match(r.failures[0]!.message, /boom while loading/);
});

test("a file that calls Deno.exit(1) after its test passed counts as failed: no report", async () => {
  const r = await fixture("exits_after_passing");
  assert.equal([r.passed, r.failed], [0, 1], r.output);
  assert.is(r.notes.length, 1);
  assert.match(r.notes[0]!, /exited with code 1 without a report/);
});

test("a file left running past its deadline is killed and counted failed", async () => {
  const r = await fixture("hangs_after_passing", 15_000);
  assert.equal([r.passed, r.failed], [1, 1], r.output);
  assert.match(r.notes.join("\n"), /did not exit within 15 s/);
});

test("a file that never calls test.run() counts as failed", async () => {
  const r = await fixture("no_run");
  assert.equal([r.passed, r.failed], [0, 1], r.output);
  assert.match(r.notes.join("\n"), /ran no test/);
});

test("the last line sums the files: `N passed, N failed`, skips only when there are some", () => {
  assert.is(results.length, 6, "the fixtures above ran");
  assert.is(summaryLine(results), "5 passed, 8 failed, 1 skipped");
  assert.is(summaryLine(results.filter((r) => r.skipped === 0)), "2 passed, 8 failed");
  assert.is(summaryLine([]), "0 passed, 0 failed");
});

test("countFile: a report is one JSON line of counts; anything else counts as failed", () => {
  const report = (o: Record<string, unknown>) =>
    JSON.stringify({ file: "f", passed: 2, failed: 0, skipped: 0, total: 2, failures: [], ...o }) +
    "\n";
  const end = { code: 0, timeoutMs: 1000 };
  assert.equal(countFile({ ...end, report: report({}) }).failed, 0);
  assert.is(countFile({ ...end, report: report({}) }).passed, 2);
  // Exit code 1 with every test passed: one more failure, with a note.
  const late = countFile({ ...end, code: 1, report: report({}) });
  assert.equal([late.passed, late.failed], [2, 1]);
  assert.match(late.notes[0]!, /exited with code 1 after its tests passed/);
  // Exit code 1 because tests failed: no extra failure.
  assert.is(countFile({ ...end, code: 1, report: report({ failed: 1, total: 3 }) }).failed, 1);
  for (
    const bad of ["", "Total: 9\nPassed: 9\n", report({}) + report({}), report({ passed: -1 })]
  ) {
    const c = countFile({ ...end, report: bad });
    assert.equal([c.passed, c.failed], [0, 1], JSON.stringify(bad));
    assert.is(c.notes.length, 1);
  }
});

test.run();
