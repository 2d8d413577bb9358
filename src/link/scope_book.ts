/**
 * What linkd makes of what it knows about scopes (the scope book, records/scope_book.ts): a
 * refusal learnt, a refused scope found enabled (granted at the next re-link), a link that
 * granted some, which scopes to ask for, and the `capabilities` report. The book is looked at
 * again on a schedule and when the user asks to pair.
 */
import type { Capabilities } from "../contract.ts";
import type { Refusal, ScopeBook } from "../records/scope_book.ts";

export function refuse(book: ScopeBook, scope: string, r: Refusal): ScopeBook {
  return {
    refused: { ...book.refused, [scope]: { ...r, detail: r.detail.slice(0, 200) } },
    available: book.available.filter((s) => s !== scope),
  };
}

/** A refused scope the server now accepts: no longer refused, available after a re-link. */
export function enabled(book: ScopeBook, scope: string): ScopeBook {
  const refused = { ...book.refused };
  delete refused[scope];
  const available = book.available.includes(scope) ? book.available : [...book.available, scope];
  return { refused, available };
}

/** After a link: what was granted is neither refused nor pending. */
export function linked(book: ScopeBook, granted: readonly string[]): ScopeBook {
  const refused = { ...book.refused };
  for (const s of granted) delete refused[s];
  return { refused, available: book.available.filter((s) => !granted.includes(s)) };
}

/** The scopes to ask for: the wanted ones not known to be refused (all of them on a recheck). */
export function scopesToAsk(
  wanted: readonly string[],
  book: ScopeBook,
  recheck: boolean,
): string[] {
  return recheck ? [...wanted] : wanted.filter((s) => !book.refused[s]);
}

/**
 * The `capabilities` report: granted scopes, and every wanted scope that is not, with why.
 * While nothing is granted (not linked) only what is known of each scope is listed.
 */
export function capabilities(
  wanted: readonly string[],
  granted: readonly string[],
  book: ScopeBook,
): Capabilities {
  const denied: Capabilities["denied"] = [];
  const seen = new Set(granted);
  for (const s of [...wanted, ...Object.keys(book.refused), ...book.available]) {
    if (seen.has(s)) continue;
    seen.add(s);
    const r = book.refused[s];
    if (r) denied.push({ scope: s, reason: r.reason });
    else if (book.available.includes(s)) {
      denied.push({ scope: s, reason: "available_after_relink" });
    } else if (granted.length > 0) denied.push({ scope: s, reason: "not_granted" }); // linked without it
  }
  return { granted: [...granted], denied };
}
