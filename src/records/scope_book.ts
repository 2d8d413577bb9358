/**
 * The scope book as it is sealed in flash (vault slot SCOPES): which scopes the server refused
 * and why, and which it later found enabled (granted at the next re-link), so a reboot does not
 * probe again. The record is the CBOR map {refused: {scope: {reason, detail, at}}, available:
 * [scope]}; decoding bounds every field. What the link makes of the book (refusing, enabling,
 * the `capabilities` report) is in link/scope_book.ts.
 */
import { decodeCbor, encodeCbor } from "../cbor.ts";
import type { RefusalReason } from "../contract.ts";
import { Code, LinkdError } from "../errors.ts";

/**
 * Why the server refused a scope, as the book keeps it: the contract's reasons (contract.ts says
 * what each means) but `available_after_relink`, which the link derives from `available`.
 */
export type StoredRefusalReason = Exclude<RefusalReason, "available_after_relink">;

export interface Refusal {
  readonly reason: StoredRefusalReason;
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

export const EMPTY_BOOK: ScopeBook = Object.freeze({ refused: {}, available: [] });

const REASONS: ReadonlySet<string> = new Set<StoredRefusalReason>([
  "unknown_scope",
  "invalid_scope",
  "not_granted",
]);
const MAX_SCOPES = 64;

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
