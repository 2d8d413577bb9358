/**
 * Which account the speaker is linked to (the account record, records/account.ts): what a
 * profile read makes of the record, and the `account` the bus state shows. A logout or a revoked
 * grant keeps the fingerprint, so the next link to another account is told apart; factory reset
 * forgets the record with every other user record.
 */
import type { AccountRecord } from "../records/account.ts";
import type { AccountInfo } from "../contract.ts";

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
