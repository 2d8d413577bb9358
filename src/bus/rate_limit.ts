/**
 * A token bucket on the monotonic clock: `burst` commands at once, then `perMinute` a minute.
 * One bucket per command name, so a flood of one command cannot starve another.
 */
import { invalidArgument } from "../text.ts";

export interface RateLimit {
  /** Commands accepted at once from a full bucket. */
  burst: number;
  /** Commands accepted per minute once the bucket is empty. */
  perMinute: number;
}

/** The default: 10 at once, then one every two seconds. */
export const DEFAULT_COMMAND_RATE: Readonly<RateLimit> = Object.freeze({
  burst: 10,
  perMinute: 30,
});

export class TokenBucket {
  readonly #limit: RateLimit;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /** `now` is monotonic milliseconds. */
  constructor(limit: RateLimit, now: () => number) {
    if (!(limit.burst >= 1) || !(limit.perMinute > 0)) {
      throw invalidArgument("Rate limit needs burst >= 1 and perMinute > 0");
    }
    this.#limit = { ...limit };
    this.#now = now;
    this.#tokens = limit.burst;
    this.#at = now();
  }

  /** Takes one token: true when the command may run. */
  take(): boolean {
    const t = this.#now();
    const refill = ((t - this.#at) * this.#limit.perMinute) / 60_000;
    this.#tokens = Math.min(this.#limit.burst, this.#tokens + Math.max(0, refill));
    this.#at = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
