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
