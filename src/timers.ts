/**
 * A timer without Deno's global `setTimeout`. In Deno 2.9 the global `setTimeout` is Node's
 * (it returns a Timeout object) and its first call loads part of the Node compatibility layer:
 * about 10 ms and 4 MB on this machine, on linkd's boot path. `AbortSignal.timeout` is Deno's
 * own web timer and costs nothing to set up; Deno keeps the process alive for it only while the
 * signal has an "abort" listener, so removing the listener cancels the timer for good (it may
 * still tick once, to nobody, and never holds the process).
 */

/** The longest single step (the web timer's limit); longer delays are chained. */
const MAX_STEP_MS = 2 ** 31 - 1;

/** Cancels the timer; calling it again, or after it fired, does nothing. */
export type CancelTimer = () => void;

/**
 * Calls `fn` once after `ms` milliseconds. A negative or NaN delay means 0 (as `setTimeout`);
 * Infinity means never.
 */
export function startTimer(ms: number, fn: () => void): CancelTimer {
  let done = false;
  let disarm: () => void = () => {};
  const arm = (left: number) => {
    const step = Math.min(left, MAX_STEP_MS);
    const signal = AbortSignal.timeout(step);
    const onTime = () => {
      if (done) return;
      if (left > step) return arm(left - step);
      done = true;
      fn();
    };
    signal.addEventListener("abort", onTime, { once: true });
    disarm = () => signal.removeEventListener("abort", onTime);
  };
  if (ms !== Infinity) arm(Number.isNaN(ms) ? 0 : Math.max(0, Math.ceil(ms)));
  return () => {
    if (done) return;
    done = true;
    disarm();
  };
}
