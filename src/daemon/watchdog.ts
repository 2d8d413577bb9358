/**
 * The systemd service watchdog (sd_watchdog_enabled(3)): when systemd sets `WATCHDOG_USEC`
 * (from the unit's `WatchdogSec=`) and `WATCHDOG_PID` is unset or this process, linkd sends
 * `WATCHDOG=1` every `WATCHDOG_USEC / 2` until it stops. The pings run on the injected clock's
 * monotonic time, so a wall clock that jumps at time sync neither skips nor bunches them.
 */
import type { Clock } from "../clock.ts";
import type { Notifier } from "./sd_notify.ts";

/** A running watchdog. */
export interface Watchdog {
  /** Milliseconds between two pings (half of WATCHDOG_USEC). */
  readonly intervalMs: number;
  /** Settles (never rejects) once the signal has aborted and the loop has ended. */
  readonly done: Promise<void>;
}

export interface WatchdogOptions {
  /** This process's id, compared with WATCHDOG_PID (default `Deno.pid`). */
  pid?: number;
  /** Called once with the reason when a ping fails, and again only after one has succeeded. */
  onFailure?: (reason: string) => void;
}

/**
 * The ping interval in milliseconds, or null when the watchdog is not for this process:
 * WATCHDOG_USEC unset, empty, not a positive decimal integer, or WATCHDOG_PID set to another
 * (or malformed) process id. Follows sd_watchdog_enabled(3).
 */
export function watchdogInterval(
  env: (name: string) => string | undefined,
  pid: number,
): number | null {
  const usec = env("WATCHDOG_USEC");
  if (usec === undefined || !/^[0-9]{1,16}$/.test(usec)) return null;
  const n = Number(usec);
  if (!Number.isSafeInteger(n) || n <= 0) return null;
  const forPid = env("WATCHDOG_PID");
  if (forPid !== undefined && forPid !== "") {
    if (!/^[0-9]{1,10}$/.test(forPid) || Number(forPid) !== pid) return null;
  }
  return Math.max(1, n / 2000);
}

/**
 * Starts sending `WATCHDOG=1` through `notifier` every WATCHDOG_USEC/2 on `clock` until
 * `signal` aborts. Returns null (and starts nothing) when the watchdog is not enabled for this
 * process (see watchdogInterval). The first ping is sent one interval after the start; pings
 * keep a fixed cadence (a slow ping does not push the next one back), and after a stall longer
 * than an interval the next ping goes at once.
 */
export function startWatchdog(
  notifier: Notifier,
  env: (name: string) => string | undefined,
  clock: Clock,
  signal: AbortSignal,
  options: WatchdogOptions = {},
): Watchdog | null {
  const intervalMs = watchdogInterval(env, options.pid ?? Deno.pid);
  if (intervalMs === null || signal.aborted) return null;
  const done = loop(notifier, clock, signal, intervalMs, options.onFailure);
  return { intervalMs, done };
}

async function loop(
  notifier: Notifier,
  clock: Clock,
  signal: AbortSignal,
  intervalMs: number,
  onFailure: ((reason: string) => void) | undefined,
): Promise<void> {
  let next = clock.monotonic() + intervalMs;
  let failing = false;
  while (!signal.aborted) {
    try {
      await clock.sleep(Math.max(0, next - clock.monotonic()), signal);
    } catch {
      return; // aborted
    }
    if (signal.aborted) return;
    let ok = false;
    let reason = "the notify socket refused WATCHDOG=1";
    try {
      ok = await notifier.notify("WATCHDOG=1");
      const detail = (notifier as { lastError?: unknown }).lastError;
      if (typeof detail === "string") reason = detail;
    } catch (e) {
      reason = e instanceof Error ? e.message : String(e);
    }
    if (!ok && !failing) {
      try {
        onFailure?.(reason);
      } catch { /* a logger's failure does not stop the watchdog */ }
    }
    failing = !ok;
    next += intervalMs;
    const now = clock.monotonic();
    if (next <= now) next = now; // stalled past a whole interval: ping at once, then re-phase
  }
}
