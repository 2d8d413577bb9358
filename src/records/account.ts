/**
 * Which account the speaker is linked to, as it is sealed in flash (vault slot ACCOUNT): the
 * keyed fingerprint of the profile's `user_id` (never the id itself, Vault.fingerprint), the
 * fingerprint of the account it replaced, and whether the fingerprint belongs to the current
 * link. The record is the CBOR map {fingerprint, previous?, current}; decoding checks each
 * field. What a profile read or a logout makes of it is in link/account.ts.
 */
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { Code, LinkdError } from "../errors.ts";

export interface AccountRecord {
  /** 32 hex characters (Vault.fingerprint). */
  readonly fingerprint: string;
  /** The account this one replaced, when it was another. */
  readonly previous?: string;
  /** True while `fingerprint` is the current link's account; false after a logout or re-pair. */
  readonly current: boolean;
}

const FINGERPRINT = /^[0-9a-f]{32}$/;

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
