/**
 * What linkd knows about scopes: which the server refused and why, and which it later found
 * enabled (granted at the next re-link). Sealed in the vault (slot SCOPES) so a reboot does not
 * probe again; looked at again on a schedule and when the user asks to pair.
 */
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { Code, LinkdError } from "../errors.ts";

export type RefusalReason =
  /** LWA's "400 An unknown scope was requested": the security profile is not enabled for it. */
  | "unknown_scope"
  /** invalid_scope without LWA's wording (RFC 6749/8628 servers). */
  | "invalid_scope"
  /** The server linked but did not grant it (its token answer named fewer scopes). */
  | "not_granted"
  /** Refused before, enabled now: granted after the next re-link (cmd/pair). */
  | "available_after_relink";

export interface Refusal {
  readonly reason: Exclude<RefusalReason, "available_after_relink">;
  /** The server's words, for people (error_description), bounded. */
  readonly detail: string;
  /** Wall-clock ms of the finding; informative only. */
  readonly at: number;
}

export interface ScopeBook {
  readonly refused: Readonly<Record<string, Refusal>>;
  /** Scopes found enabled after a refusal: granted at the next re-link. */
  readonly available: readonly string[];
}

export interface Capabilities {
  granted: string[];
  denied: { scope: string; reason: RefusalReason }[];
}

export const EMPTY_BOOK: ScopeBook = Object.freeze({ refused: {}, available: [] });

const REASONS = new Set(["unknown_scope", "invalid_scope", "not_granted"]);
const MAX_SCOPES = 64;

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

export function encodeScopeBook(b: ScopeBook): Uint8Array {
  return encodeCbor({ refused: b.refused, available: [...b.available] });
}

export function decodeScopeBook(bytes: Uint8Array): ScopeBook {
  const bad = (what: string) =>
    new LinkdError(Code.STORE_CORRUPT, `Cannot read the scope record: ${what} is malformed`);
  const v = decodeCbor(bytes, "scope record") as Record<string, unknown> | null;
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad("the record");
  const refusedIn = v.refused;
  const availableIn = v.available;
  if (refusedIn === null || typeof refusedIn !== "object" || Array.isArray(refusedIn)) {
    throw bad('"refused"');
  }
  const refused: Record<string, Refusal> = {};
  const entries = Object.entries(refusedIn as Record<string, unknown>);
  if (entries.length > MAX_SCOPES) throw bad('"refused"');
  for (const [scope, r] of entries) {
    const x = r as Record<string, unknown> | null;
    if (
      !scope || scope.length > 256 || x === null || typeof x !== "object" ||
      typeof x.reason !== "string" || !REASONS.has(x.reason) || typeof x.detail !== "string" ||
      x.detail.length > 200 || typeof x.at !== "number" || !Number.isFinite(x.at)
    ) throw bad(`"refused.${scope.slice(0, 40)}"`);
    refused[scope] = { reason: x.reason as Refusal["reason"], detail: x.detail, at: x.at };
  }
  if (
    !Array.isArray(availableIn) || availableIn.length > MAX_SCOPES ||
    !availableIn.every((s) => typeof s === "string" && s.length > 0 && s.length <= 256)
  ) throw bad('"available"');
  return { refused, available: availableIn as string[] };
}
