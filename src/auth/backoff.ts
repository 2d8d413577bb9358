/**
 * Retry delays after a network failure or a server error (5xx).
 *
 * The Alexa device SDK waits 0, 1, 2, 4, 10, 30, 60 s with ±50 % jitter and then 60 s for ever:
 * up to ~120 requests in an hour-long outage when the jitter falls low. linkd follows the same
 * table for the first minutes, so a short glitch heals as fast, then keeps going to 2 and 5
 * minutes: at most 31 requests in any hour of outage, whatever the jitter (the bound is proved
 * in backoff_test.ts). Jitter spreads a fleet of speakers that lost the same server.
 */
import { invalidArgument } from "../text.ts";

/** Seconds, before jitter. */
export const RETRY_TABLE_S: readonly number[] = [0, 1, 2, 4, 10, 30, 60, 120, 300];
/** Each delay is multiplied by a factor drawn from [1 - JITTER, 1 + JITTER]. */
export const JITTER = 0.5;

export class Backoff {
  #attempt = 0;
  readonly #random: () => number;
  readonly #table: readonly number[];

  /** `random` returns a number in [0, 1): Math.random in the daemon, a seeded one in tests. */
  constructor(random: () => number, table: readonly number[] = RETRY_TABLE_S) {
    if (table.length === 0) throw invalidArgument("Backoff table must not be empty");
    this.#random = random;
    this.#table = table;
  }

  /** Failures since the last success. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay in milliseconds before the next try, and counts the failure. */
  next(): number {
    const base = this.#table[Math.min(this.#attempt, this.#table.length - 1)]!;
    this.#attempt++;
    const factor = 1 - JITTER + 2 * JITTER * this.#random();
    return Math.round(base * 1000 * factor);
  }

  /** Call after a success: the next failure starts at the top of the table again. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * The most tries a Backoff can make in `windowMs`, when every jitter draw is at its lowest:
 * the bound that holds whatever the random numbers are.
 */
export function worstCaseTries(windowMs: number, table: readonly number[] = RETRY_TABLE_S): number {
  let t = 0;
  let tries = 0;
  for (let i = 0;; i++) {
    const d = table[Math.min(i, table.length - 1)]! * 1000 * (1 - JITTER);
    if (t + d > windowMs) return tries;
    t += d;
    tries++;
    if (d === 0 && i > table.length) return Infinity;
  }
}
