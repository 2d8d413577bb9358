/**
 * Time, injected. linkd keeps deadlines on the monotonic clock and uses the wall clock only to
 * stamp `*_at` fields, because a speaker may boot with no RTC and no NTP yet.
 */
import { startTimer } from "./timers.ts";

export interface Clock {
  /** Wall-clock Unix milliseconds; may be years off until time sync. */
  now(): number;
  /** Monotonic milliseconds from an arbitrary origin: only differences mean anything. */
  monotonic(): number;
  /** Resolves after `ms` monotonic milliseconds; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The reason a sleep rejects with when `signal` aborts it (also the fake clock's, test/support). */
export function aborted(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted", "AbortError");
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(aborted(signal));
      const onAbort = () => {
        cancel();
        reject(aborted(signal!));
      };
      // Not the global setTimeout: it would load Node compat at boot (timers.ts).
      const cancel = startTimer(Math.max(0, ms), () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};
