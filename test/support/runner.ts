/**
 * The machinery of the test runner (test/run.ts): runs one test file in its own Deno process
 * through test/support/uvu_child.ts, with a deadline, and counts its results from the JSON
 * report the child writes (`FileReport`), never from uvu's printed text. A file that crashes,
 * hangs past its deadline, or exits with no report counts as failed, with a note saying why.
 */

/** A test that failed: its suite ("" for uvu's default one), its name, the error's message. */
export interface TestFailure {
  suite: string;
  test: string;
  message: string;
}

/** What the child reports for one file: one JSON line. */
export interface FileReport {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  /** Tests that were to run (uvu's total: skipped tests not included). */
  total: number;
  failures: TestFailure[];
}

/** How the child process of one file ended. */
export interface ChildEnd {
  /** Its exit code; null when it was killed at the deadline. */
  code: number | null;
  /** What it wrote to its report file ("" when nothing). */
  report: string;
  /** The deadline, for the note of a killed file. */
  timeoutMs: number;
}

/** The runner's count of one file. */
export interface Counted {
  passed: number;
  failed: number;
  skipped: number;
  failures: TestFailure[];
  /** Why the file counts failed beyond its failing tests (crash, deadline, no report). */
  notes: string[];
}

// deno-lint-ignore no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/**
 * The failures in the error text uvu's runner returns for a suite: each block starts with a
 * `FAIL [suite] "name"` line followed by the error's message line. Only the names and messages
 * come from this text; the counts come from the runner's own numbers.
 */
export function parseUvuErrors(errors: string): TestFailure[] {
  const lines = errors.replace(ANSI, "").split("\n");
  const out: TestFailure[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*FAIL\s+(?:(\S.*?)\s+)?"(.*)"\s*$/.exec(lines[i]!);
    if (m === null) continue;
    // The message line ends with the assertion's operator in brackets, after two spaces.
    const message = (lines[i + 1] ?? "").trim().replace(/\s{2}\([a-z.]+\)$/i, "");
    out.push({ suite: m[1] ?? "", test: m[2]!, message });
  }
  return out;
}

function isReport(v: unknown): v is FileReport {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  return count(r.passed) && count(r.failed) && count(r.skipped) && count(r.total) &&
    Array.isArray(r.failures);
}

/** Counts one file from how its child ended. */
export function countFile(end: ChildEnd): Counted {
  const lines = end.report.split("\n").filter((l) => l.trim() !== "");
  let report: FileReport | null = null;
  if (lines.length === 1) {
    try {
      const v: unknown = JSON.parse(lines[0]!);
      if (isReport(v)) report = v;
    } catch {
      // not JSON: no report
    }
  }
  const seconds = (end.timeoutMs / 1000).toFixed(0);
  if (report === null) {
    const why = end.code === null
      ? `killed after ${seconds} s (the deadline) before it reported`
      : lines.length > 1
      ? `exited with code ${end.code} after ${lines.length} reports (one expected)`
      : `exited with code ${end.code} without a report (a crash, or Deno.exit during the tests)`;
    return { passed: 0, failed: 1, skipped: 0, failures: [], notes: [why] };
  }
  const counted: Counted = {
    passed: report.passed,
    failed: report.failed,
    skipped: report.skipped,
    failures: report.failures,
    notes: [],
  };
  if (report.total === 0 && report.skipped === 0) {
    counted.failed += 1;
    counted.notes.push("ran no test (is test.run() missing?)");
  }
  if (end.code === null) {
    counted.failed += 1;
    counted.notes.push(`did not exit within ${seconds} s (something was left running)`);
  } else if (end.code !== 0 && counted.failed === 0) {
    counted.failed += 1;
    counted.notes.push(`exited with code ${end.code} after its tests passed`);
  }
  return counted;
}

/** The result of one file: its count, its output (stdout then stderr) and how long it took. */
export interface FileResult extends Counted {
  file: string;
  output: string;
  ms: number;
}

const CHILD = new URL("./uvu_child.ts", import.meta.url).pathname;

async function drain(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  into: Uint8Array[],
): Promise<void> {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    into.push(value);
  }
}

function text(chunks: Uint8Array[]): string {
  const decoder = new TextDecoder();
  return chunks.map((c) => decoder.decode(c, { stream: true })).join("") + decoder.decode();
}

/**
 * Runs `file` (relative to `cwd`) in its own Deno process and counts it; kills it (SIGKILL)
 * after `timeoutMs`. `reportDir` is a folder for the child's report file.
 */
export async function runFile(
  file: string,
  opts: { cwd: string; reportDir: string; timeoutMs: number },
): Promise<FileResult> {
  const t0 = performance.now();
  const reportPath = `${opts.reportDir}/${file.replace(/[^A-Za-z0-9._-]/g, "_")}.jsonl`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", CHILD, file],
    cwd: opts.cwd,
    env: { NO_COLOR: "1", LINKD_TEST: "1", LINKD_TEST_REPORT: reportPath },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const readers = [child.stdout.getReader(), child.stderr.getReader()] as const;
  const reading = Promise.all([drain(readers[0], out), drain(readers[1], err)]);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, opts.timeoutMs);
  const status = await child.status;
  clearTimeout(timer);
  // A process the file started may still hold the pipes: wait a little, then stop reading.
  let giveUp: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    reading,
    new Promise((resolve) => giveUp = setTimeout(resolve, 2000)),
  ]);
  clearTimeout(giveUp);
  for (const r of readers) r.cancel().catch(() => {});
  let report = "";
  try {
    report = Deno.readTextFileSync(reportPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const counted = countFile({
    code: killed ? null : status.code,
    report,
    timeoutMs: opts.timeoutMs,
  });
  return { file, ...counted, output: text(out) + text(err), ms: performance.now() - t0 };
}

/** The last line of a run: `N passed, N failed` (and `, N skipped` when some were). */
export function summaryLine(results: readonly Counted[]): string {
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const skipped = results.reduce((n, r) => n + r.skipped, 0);
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
}
