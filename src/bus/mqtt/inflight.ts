/**
 * Packet identifiers in flight (MQTT 5 section 2.2.1): 1..65535, shared by PUBLISH (QoS 1) and
 * SUBSCRIBE, never one that is still waiting for its acknowledgement. Each identifier carries
 * what waits for it.
 */

export const PACKET_ID_MAX = 65_535;

export class Inflight<T> {
  readonly #waiting = new Map<number, T>();
  #next = 1;

  get size(): number {
    return this.#waiting.size;
  }

  /** A free identifier now holding `value`; null when all 65535 are in flight. */
  add(value: T): number | null {
    if (this.#waiting.size >= PACKET_ID_MAX) return null;
    for (;;) {
      const id = this.#next;
      this.#next = id === PACKET_ID_MAX ? 1 : id + 1;
      if (!this.#waiting.has(id)) {
        this.#waiting.set(id, value);
        return id;
      }
    }
  }

  get(id: number): T | undefined {
    return this.#waiting.get(id);
  }

  /** Releases `id`; returns what waited for it, or undefined when it was not in flight. */
  take(id: number): T | undefined {
    const v = this.#waiting.get(id);
    if (v !== undefined) this.#waiting.delete(id);
    return v;
  }

  /** Releases every identifier; returns what waited. */
  drain(): T[] {
    const all = [...this.#waiting.values()];
    this.#waiting.clear();
    return all;
  }
}
