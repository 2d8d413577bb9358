/**
 * Keepalive (MQTT 5 section 3.1.2.10): when nothing was sent for a whole period, send a
 * PINGREQ; when no packet at all arrives within `waitMs` after it (the PINGRESP's deadline,
 * default one period), the connection is dead. Every delay runs on the injected timers, so
 * tests drive it with fake time.
 */
import type { MqttTimers } from "./types.ts";

export class Keepalive {
  readonly #timers: MqttTimers;
  readonly #periodMs: number;
  readonly #waitMs: number;
  readonly #ping: () => void;
  readonly #dead: () => void;
  #idle: number | undefined;
  #wait: number | undefined;
  #stopped = false;
  #lastSent = 0;

  /** `periodMs` 0 turns keepalive off. `ping` sends a PINGREQ; `dead` is called at most once. */
  constructor(
    timers: MqttTimers,
    periodMs: number,
    ping: () => void,
    dead: () => void,
    waitMs = periodMs,
  ) {
    this.#timers = timers;
    this.#periodMs = periodMs;
    this.#waitMs = waitMs;
    this.#ping = ping;
    this.#dead = dead;
  }

  /** Something was sent: the idle period starts again. */
  sent(): void {
    if (this.#periodMs === 0 || this.#stopped) return;
    const now = this.#timers.monotonic?.();
    if (now !== undefined) {
      // One timer per idle period, not one per packet: #onIdle looks at when the last went.
      this.#lastSent = now;
      if (this.#idle === undefined) {
        this.#idle = this.#timers.setTimeout(() => this.#onIdle(), this.#periodMs);
      }
      return;
    }
    if (this.#idle !== undefined) this.#timers.clearTimeout(this.#idle);
    this.#idle = this.#timers.setTimeout(() => this.#onIdle(), this.#periodMs);
  }

  /** A packet arrived: the broker is alive. */
  received(): void {
    if (this.#wait === undefined) return;
    this.#timers.clearTimeout(this.#wait);
    this.#wait = undefined;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of [this.#idle, this.#wait]) if (t !== undefined) this.#timers.clearTimeout(t);
    this.#idle = this.#wait = undefined;
  }

  #onIdle(): void {
    this.#idle = undefined;
    if (this.#stopped || this.#wait !== undefined) return;
    const now = this.#timers.monotonic?.();
    if (now !== undefined && now - this.#lastSent < this.#periodMs) {
      const left = this.#periodMs - (now - this.#lastSent);
      this.#idle = this.#timers.setTimeout(() => this.#onIdle(), left);
      return;
    }
    this.#wait = this.#timers.setTimeout(() => {
      this.#wait = undefined;
      if (this.#stopped) return;
      this.stop();
      this.#dead();
    }, this.#waitMs);
    this.#ping(); // calls sent(), which starts the next idle period
  }
}
