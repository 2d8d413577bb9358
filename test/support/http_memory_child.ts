/**
 * The child process of src/auth/http_memory_test.ts: POSTs to `/warm` (so the code is compiled),
 * then to PATH on the test's server at 127.0.0.1:PORT through postForm over http1Fetch, the
 * path every answer of the authorization server takes, and prints one JSON line: how far the
 * peak resident memory rose above the resident memory before the request, in KiB, and how
 * many bytes of text came.
 *
 *   deno run -A [--v8-flags=...] test/support/http_memory_child.ts PORT PATH MAX_BYTES
 */
import { systemClock } from "../../src/clock.ts";
import { http1Fetch } from "../../src/net/http1.ts";
import { postForm } from "../../src/auth/http.ts";

const [port, path, maxArg] = Deno.args;
const maxBytes = Number(maxArg);

/** A field of /proc/self/status, in KiB. */
function statusKb(field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
    Deno.readTextFileSync("/proc/self/status"),
  );
  if (m === null) throw new Error(`No ${field} in /proc/self/status`);
  return Number(m[1]);
}

/** Starts the peak (VmHWM) again from the current resident size; false where Linux cannot. */
function resetPeak(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

async function post(to: string): Promise<number> {
  const url = `http://127.0.0.1:${port}${to}`;
  const res = await postForm(http1Fetch, url, { a: "b" }, {
    clock: systemClock,
    timeoutMs: 60_000,
    maxBytes,
  });
  return res.text.length;
}

await post("/warm");
(globalThis as { gc?: () => void }).gc?.();
const reset = resetPeak();
const before = statusKb("VmRSS");
const textLength = await post(path!);
const peakRiseKb = statusKb("VmHWM") - before;
console.log(JSON.stringify({ peakRiseKb, peakReset: reset, textLength }));
