/**
 * Which of the wanted scopes does the server refuse? LWA's answer to a code-pair request that
 * holds a refused scope ("400 An unknown scope was requested") does not say which one, so linkd
 * finds out by asking for other sets. Every request that succeeds issues a code pair, and only
 * the one for the final set can be shown: a code pair issued for a smaller set is thrown away.
 * So the probe asks for the largest set that could still be the answer, and only learns from
 * refusals where it can:
 *
 * 1. Narrowing: ask `wanted` minus the scopes suspected so far. Refused: add the most suspect
 *    scope of that set to the suspects and ask again. Accepted: every scope of it is granted.
 * 2. Confirming: a suspect is refused for sure when some refused set minus it holds only
 *    granted scopes. A suspect not settled that way is asked together with the granted ones:
 *    refused, it is refused; accepted (the guess was wrong), it joins them, and that code pair
 *    replaces the one before.
 *
 * A set is never asked twice (a set refused once is refused again), and at most 2n + 1 sets are
 * asked for n scopes. With `[alexa:all, music::library:read]` and Music refused: two requests,
 * one code pair. The server is assumed to refuse a set exactly when it holds a refused scope
 * (LWA checks each scope against the security profile); the bound holds either way.
 *
 * Pure logic: the link controller sends the requests.
 */
import { invalidArgument } from "../text.ts";

/** How suspect a scope is: higher is asked to be dropped first. */
export type Suspicion = (scope: string, index: number) => number;

export interface ProbeResult<T> {
  /** The scopes granted, in the wanted order: the last accepted set. */
  readonly granted: readonly string[];
  /** Each refused scope and what its confirming refusal said. */
  readonly refused: ReadonlyMap<string, T>;
}

function key(set: readonly string[]): string {
  return [...set].sort().join(" ");
}

/**
 * A probe over `wanted` (no repeats). Call `next()` for the set to ask; report the server's
 * answer with `accept(set)` or `refuse(set, why)`; `next()` returns null when the answer is
 * known, then `result()` has it.
 */
export class ScopeProbe<T> {
  readonly #wanted: readonly string[];
  readonly #suspicion: Suspicion;
  /** Scopes dropped while narrowing, most suspect first. */
  readonly #suspects: string[] = [];
  /** Scopes in an accepted set. */
  readonly #granted = new Set<string>();
  readonly #refusedSets: { set: readonly string[]; why: T }[] = [];
  readonly #asked = new Set<string>();
  readonly #refused = new Map<string, T>();
  #narrowing = true;
  #pending: readonly string[] | null = null;

  constructor(wanted: readonly string[], suspicion: Suspicion) {
    this.#wanted = [...wanted];
    this.#suspicion = suspicion;
  }

  /** Requests made so far. */
  get asked(): number {
    return this.#asked.size;
  }

  /** The next set to ask for, or null when the probe is done. */
  next(): readonly string[] | null {
    if (this.#pending) throw invalidArgument("ScopeProbe.next(): the last set has no answer yet");
    for (;;) {
      const set = this.#narrowing ? this.#narrowed() : this.#toConfirm();
      if (set === null) return null;
      const known = this.#refusedSets.find((r) => key(r.set) === key(set));
      if (known) {
        this.#learnRefusal(set, known.why);
        continue;
      }
      if (this.#asked.has(key(set))) return null; // accepted before: nothing left to learn
      this.#pending = set;
      return set;
    }
  }

  /** The server accepted `set` (issued a code pair for it). */
  accept(set: readonly string[]): void {
    this.#answered(set);
    for (const s of set) this.#granted.add(s);
    this.#narrowing = false;
    this.#settle();
  }

  /** The server refused `set` as holding an unknown scope. */
  refuse(set: readonly string[], why: T): void {
    this.#answered(set);
    this.#refusedSets.push({ set: [...set], why });
    this.#learnRefusal(set, why);
  }

  result(): ProbeResult<T> {
    return {
      granted: this.#wanted.filter((s) => this.#granted.has(s)),
      refused: new Map(this.#refused),
    };
  }

  #answered(set: readonly string[]): void {
    if (this.#pending === null || key(this.#pending) !== key(set)) {
      throw invalidArgument("ScopeProbe: an answer for a set that was not asked");
    }
    this.#pending = null;
    this.#asked.add(key(set));
  }

  #learnRefusal(set: readonly string[], why: T): void {
    if (this.#narrowing) {
      const suspect = this.#mostSuspect(set);
      if (suspect === undefined) this.#narrowing = false; // the empty set: nothing to drop
      else this.#suspects.push(suspect);
    } else {
      // Confirming: the set was the granted scopes plus one suspect, so that one is refused.
      const extra = set.filter((s) => !this.#granted.has(s));
      if (extra.length === 1) this.#refused.set(extra[0]!, why);
    }
    this.#settle();
  }

  /** Marks every suspect that a refused set proves refused (the rest of it granted). */
  #settle(): void {
    for (const s of this.#suspects) {
      if (this.#refused.has(s) || this.#granted.has(s)) continue;
      const proof = this.#refusedSets.find((r) =>
        r.set.includes(s) && r.set.every((x) => x === s || this.#granted.has(x))
      );
      if (proof) this.#refused.set(s, proof.why);
    }
  }

  #narrowed(): readonly string[] | null {
    const set = this.#wanted.filter((s) => !this.#suspects.includes(s));
    if (set.length === 0) {
      this.#narrowing = false;
      return this.#toConfirm();
    }
    return set;
  }

  /** The granted scopes plus the least suspect unsettled suspect, or null when none is left. */
  #toConfirm(): readonly string[] | null {
    const open = this.#suspects.filter((s) => !this.#refused.has(s) && !this.#granted.has(s));
    const s = open[open.length - 1];
    if (s === undefined) return null;
    return this.#wanted.filter((x) => x === s || this.#granted.has(x));
  }

  #mostSuspect(set: readonly string[]): string | undefined {
    let best: string | undefined;
    let score = -Infinity;
    for (const s of set) {
      if (this.#suspects.includes(s)) continue;
      const v = this.#suspicion(s, this.#wanted.indexOf(s));
      if (v >= score) { // ties go to the later scope
        best = s;
        score = v;
      }
    }
    return best;
  }
}
