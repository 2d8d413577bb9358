/**
 * The child side of the test runner (test/run.ts): runs one uvu test file and reports its
 * results as one JSON line (a `FileReport`, test/support/runner.ts) appended to the file named
 * by LINKD_TEST_REPORT, while printing uvu's usual output for people.
 *
 *   deno run -A test/support/uvu_child.ts FILE
 *
 * uvu's deferred mode (`globalThis.UVU_DEFER`, set before uvu is first imported) makes each
 * `test.run()` only queue its suite in `globalThis.UVU_QUEUE`; this file then runs the queued
 * suites itself, so the counts come from uvu's own runner results, not from its printed text.
 * A file that throws while it loads is reported as one failure; exit code 1 when any test
 * failed.
 */
import { type FileReport, parseUvuErrors, type TestFailure } from "./runner.ts";

/** One queued uvu suite: resolves to [errors or true, passed, skipped, total]. */
type QueuedSuite = () => Promise<[string | true, number, number, number]>;

const uvu = globalThis as unknown as {
  UVU_DEFER?: number;
  UVU_INDEX?: number;
  UVU_QUEUE?: (string | null | QueuedSuite)[][];
};
uvu.UVU_DEFER = 1;
uvu.UVU_INDEX = 0;
uvu.UVU_QUEUE = [[null]];

const file = Deno.args[0];
const reportPath = Deno.env.get("LINKD_TEST_REPORT");
if (file === undefined || Deno.args.length !== 1) {
  console.error("usage: uvu_child.ts FILE (with LINKD_TEST_REPORT naming the report file)");
  Deno.exit(64);
}

const encoder = new TextEncoder();
const print = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
const oneLine = (e: unknown) =>
  (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).replace(/\s+/g, " ").trim();

const report: FileReport = { file, passed: 0, failed: 0, skipped: 0, total: 0, failures: [] };
const t0 = performance.now();

let loaded = false;
try {
  const url = new URL(file, `file://${Deno.cwd()}/`);
  await import(url.href);
  loaded = true;
} catch (e) {
  report.failed = 1;
  report.total = 1;
  report.failures.push({ suite: "", test: "(loading the file)", message: oneLine(e) });
  print(`\n  Cannot load ${file}: ${oneLine(e)}\n`);
}

if (loaded) {
  for (const group of uvu.UVU_QUEUE) {
    for (const entry of group) {
      if (typeof entry !== "function") continue; // the group's name
      let result: [string | true, number, number, number];
      try {
        result = await entry();
      } catch (e) {
        // uvu's runner lets an error of an `after` hook escape: the suite's counts are lost.
        report.failed += 1;
        report.total += 1;
        report.failures.push({ suite: "", test: "(a hook of a suite)", message: oneLine(e) });
        print(`\n  A hook threw: ${oneLine(e)}\n`);
        continue;
      }
      const [errors, passed, skipped, total] = result;
      report.passed += passed;
      report.skipped += skipped;
      report.total += total;
      // A failing test is in `errors`; a throwing `before` hook fails the suite's tests silently.
      report.failed += total - passed;
      const failures: TestFailure[] = typeof errors === "string" ? parseUvuErrors(errors) : [];
      report.failures.push(...failures);
      if (failures.length < total - passed) {
        report.failures.push({
          suite: failures[0]?.suite ?? "",
          test: `(${total - passed - failures.length} of ${total} tests did not run)`,
          message: "a before hook of the suite threw",
        });
      }
      if (typeof errors === "string") print(`\n${errors}\n`);
    }
  }
  print(`\n  Total:     ${report.total}`);
  print(`\n  Passed:    ${report.passed}`);
  print(`\n  Skipped:   ${report.skipped}`);
  print(`\n  Duration:  ${(performance.now() - t0).toFixed(2)}ms\n\n`);
}

if (reportPath !== undefined) {
  Deno.writeTextFileSync(reportPath, JSON.stringify(report) + "\n", { append: true });
}
// Ends as uvu does: when nothing is left to do, so a file that leaves work running still hangs.
Deno.exitCode = report.failed > 0 ? 1 : 0;
