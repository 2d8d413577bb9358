/** Median time of `fn` in microseconds over `runs` runs after a warm-up. */
export function medianMicros(fn: () => void, runs: number): number {
  for (let i = 0; i < Math.min(50, runs); i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    t.push((performance.now() - s) * 1000);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * `[program, ...args]` pinned to CPU `cpu` when `cpu` is not null (`taskset`). This machine's
 * two virtual CPUs do not run at the same speed: runs compared with each other go on one CPU.
 */
export function pinned(cpu: number | null, argv: string[]): [string, string[]] {
  return cpu === null ? [argv[0]!, argv.slice(1)] : ["taskset", ["-c", String(cpu), ...argv]];
}

/** How many CPUs runs can be pinned to in turn: 0 when `taskset` is missing. */
export function pinnableCpus(): number {
  try {
    const ok = new Deno.Command("taskset", {
      args: ["-c", "0", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
    return ok ? Math.max(1, navigator.hardwareConcurrency) : 0;
  } catch {
    return 0;
  }
}
