/**
 * Which account the speaker is linked to, as a sealed record (vault slot ACCOUNT): the keyed
 * fingerprint of the profile's `user_id` (never the id itself), the fingerprint of the account
 * it replaced, and whether the fingerprint belongs to the current link. A logout or a revoked
 * grant keeps the fingerprint, so the next link to another account is told apart; factory reset
 * forgets the record with every other user record.
 */
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { Code, LinkdError } from "../errors.ts";
import type { AccountInfo } from "./controller.ts";

export interface AccountRecord {
  /** 32 hex characters (Vault.fingerprint). */
  readonly fingerprint: string;
  /** The account this one replaced, when it was another. */
  readonly previous?: string;
  /** True while `fingerprint` is the current link's account; false after a logout or re-pair. */
  readonly current: boolean;
}

const FINGERPRINT = /^[0-9a-f]{32}$/;

/** What a profile read of `fingerprint` makes of the record: same account, or a change. */
export function accountAfterRead(
  before: AccountRecord | null,
  fingerprint: string,
): AccountRecord {
  if (before === null) return { fingerprint, current: true };
  if (before.fingerprint === fingerprint) return { ...before, current: true };
  return { fingerprint, previous: before.fingerprint, current: true };
}

/** The `account` of the bus state: known only while the record is the current link's. */
export function accountInfo(r: AccountRecord | null): AccountInfo | undefined {
  if (r === null || !r.current) return undefined;
  return {
    fingerprint: r.fingerprint,
    ...(r.previous !== undefined ? { previous: r.previous } : {}),
  };
}

export function encodeAccountRecord(r: AccountRecord): Uint8Array {
  return encodeCbor({
    fingerprint: r.fingerprint,
    ...(r.previous !== undefined ? { previous: r.previous } : {}),
    current: r.current,
  });
}

export function decodeAccountRecord(bytes: Uint8Array): AccountRecord {
  const bad = (what: string) =>
    new LinkdError(Code.STORE_CORRUPT, `Cannot read the account record: ${what} is malformed`);
  const v = decodeCbor(bytes, "account record") as Record<string, unknown> | null;
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad("the record");
  const { fingerprint, previous, current } = v;
  if (typeof fingerprint !== "string" || !FINGERPRINT.test(fingerprint)) throw bad('"fingerprint"');
  if (previous !== undefined && (typeof previous !== "string" || !FINGERPRINT.test(previous))) {
    throw bad('"previous"');
  }
  if (typeof current !== "boolean") throw bad('"current"');
  return { fingerprint, ...(previous !== undefined ? { previous } : {}), current };
}
