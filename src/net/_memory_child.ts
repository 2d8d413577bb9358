/**
 * TEST-ONLY child process of http1_memory_test.ts: fetches `/warm` (so the code is compiled),
 * then `/body` from the test's server at 127.0.0.1:PORT through http1Fetch, reading the body as
 * postForm does (pieces kept, cancelled past MAX_BYTES, joined at the end), and prints one JSON
 * line: how far the peak resident memory rose above the resident memory before `/body`, in
 * KiB, and how the body came.
 *
 *   deno run -A [--v8-flags=...] src/net/_memory_child.ts PORT MAX_BYTES
 */
import { http1Fetch } from "./http1.ts";

const [port, maxArg] = Deno.args;
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

async function read(path: string) {
  const res = await http1Fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body: "a=b" });
  const reader = res.body!.getReader();
  const pieces: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const step = await reader.read();
    if (step.done) break;
    total += step.value.length;
    if (total > maxBytes) {
      await reader.cancel();
      break;
    }
    pieces.push(step.value);
  }
  const joined = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  pieces.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
  return { total, pieces: pieces.length, joined: joined.length };
}

await read("/warm");
(globalThis as { gc?: () => void }).gc?.();
const reset = resetPeak();
const before = statusKb("VmRSS");
const body = await read("/body");
const peakRiseKb = statusKb("VmHWM") - before;
console.log(JSON.stringify({ peakRiseKb, peakReset: reset, ...body }));
