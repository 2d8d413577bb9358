/**
 * The vault's record slots (store/vault.ts): which record lives under which type number in the
 * record store. The numbers are part of the flash format: never reuse or renumber one.
 *
 * Each slot's format has its file here: IDENTITY in identity.ts, TOKENS in token.ts, SCOPES in
 * scope_book.ts, ACCOUNT in account.ts; DEVICE_KEY is the CBOR map {ed25519_seed}, written and
 * read by provisioning alone (provision/provision.ts).
 */

/** Record slots. Numbers are part of the flash format: never reuse or renumber one. */
export const RecordType = {
  IDENTITY: 1,
  DEVICE_KEY: 2,
  TOKENS: 3,
  SCOPES: 4,
  /** The linked account's fingerprint and the previous one's (account.ts). */
  ACCOUNT: 5,
} as const;
export type RecordType = typeof RecordType[keyof typeof RecordType];

/** Records a user's actions create; factory reset forgets all of them. */
export const USER_RECORDS: readonly RecordType[] = [
  RecordType.TOKENS,
  RecordType.SCOPES,
  RecordType.ACCOUNT,
];
