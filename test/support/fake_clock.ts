/**
 * A clock for tests (test/support): time moves only when the test says so. It implements
 * src/clock.ts's `Clock`, so logic under test gets it where the daemon gets `systemClock`.
 */
import { aborted, type Clock } from "../../src/clock.ts";
import { startTimer } from "../../src/timers.ts";

interface Sleeper {
  at: number;
  seq: number;
  resolve: () => void;
}

/**
 * A clock for tests: time moves only when the test says so. `advance(ms)` wakes each sleeper in
 * deadline order and lets the promise chains it starts run before moving on, so a loop of
 * sleeps behaves as it would in real time, only instantly.
 */
export class FakeClock implements Clock {
  #mono: number;
  #wallOffset: number;
  #sleepers: Sleeper[] = [];
  #seq = 0;

  constructor(options: { wall?: number; monotonic?: number } = {}) {
    this.#mono = options.monotonic ?? 1_000_000;
    this.#wallOffset = (options.wall ?? Date.UTC(2026, 10, 24, 12, 0, 0)) - this.#mono;
  }

  now(): number {
    return this.#mono + this.#wallOffset;
  }

  monotonic(): number {
    return this.#mono;
  }

  /** Sets the wall clock (as NTP would), leaving the monotonic clock alone. */
  setWall(ms: number): void {
    this.#wallOffset = ms - this.#mono;
  }

  /** How many sleepers are waiting. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /** The monotonic time of the next sleeper's deadline, or null. */
  nextDeadline(): number | null {
    return this.#sleepers.length ? Math.min(...this.#sleepers.map((s) => s.at)) : null;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(aborted(signal));
      const s: Sleeper = { at: this.#mono + Math.max(0, ms), seq: this.#seq++, resolve };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((x) => x !== s);
        reject(aborted(signal!));
      };
      s.resolve = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      this.#sleepers.push(s);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Moves time forward by `ms`, waking sleepers in order and settling what they start. */
  async advance(ms: number): Promise<void> {
    const target = this.#mono + ms;
    for (;;) {
      await settle();
      const due = this.#sleepers.filter((s) => s.at <= target).sort((a, b) =>
        a.at - b.at || a.seq - b.seq
      );
      const next = due[0];
      if (!next) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      this.#mono = Math.max(this.#mono, next.at);
      next.resolve();
    }
    this.#mono = target;
    await settle();
  }
}

/** Lets pending promise callbacks and already-queued macrotasks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => startTimer(0, r));
}
