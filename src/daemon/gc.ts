/**
 * A full garbage collection after each token refresh, when V8 exposes `gc` (the launcher passes
 * `--expose-gc`, scripts/runtime.ts). A speaker refreshes once an hour and is otherwise idle;
 * V8's heuristics size the heap for allocation bursts, not for an hourly job, so without it the
 * heap keeps what a refresh left behind. Measured by the memory bench: 51.8 → 46.7 MB peak
 * after 1000 refreshes. One collection of linkd's few-MB heap takes a few milliseconds.
 */
import { startTimer } from "../timers.ts";

/** How long after a token the collection waits: the token is on the bus well before. */
export const COLLECT_DELAY_MS = 1000;

let pending = false;

/**
 * Collects COLLECT_DELAY_MS from now, unless a collection is already pending; does nothing
 * without `--expose-gc`. Not at once: at boot the first token is still on its way to the bus,
 * and a full collection (10–20 ms) would delay it.
 */
export function collectSoon(delayMs = COLLECT_DELAY_MS): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function" || pending) return;
  pending = true;
  startTimer(delayMs, () => {
    pending = false;
    try {
      gc();
    } catch { /* a collection that fails is not the daemon's failure */ }
  });
}
