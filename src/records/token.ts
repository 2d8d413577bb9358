/**
 * The user's tokens as they are sealed in flash (vault slot TOKENS). The refresh token never
 * leaves this record except in a request to the token endpoint.
 */
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { Code, LinkdError } from "../errors.ts";

export interface TokenRecord {
  readonly access_token: string;
  readonly refresh_token: string;
  readonly token_type: string;
  /** Scopes granted (for LWA: asked for and not refused). */
  readonly scopes: readonly string[];
  /** Seconds of life the server granted the access token. */
  readonly expires_in: number;
  /** Wall-clock time (Unix ms) the token was obtained; may be wrong when the clock was unset. */
  readonly obtained_at: number;
  /** obtained_at + expires_in: when the access token expires by the wall clock. */
  readonly expires_at: number;
  /** The client id the tokens were issued to: tokens of another client id are stale. */
  readonly client_id: string;
}

/** LWA tokens are up to 2048 bytes; leave room for other servers, refuse anything absurd. */
export const MAX_TOKEN_BYTES = 4096;
const MAX_SCOPES = 32;
/** Latest instant a record may name (Unix ms): 9999-12-31T23:59:59.999Z, so dates format. */
export const MAX_TIME_MS = 253402300799999;
/** Longest access token life a record may name: ten years of 365 days, in seconds. */
export const MAX_EXPIRES_IN_S = 10 * 365 * 24 * 3600;

export function encodeTokenRecord(t: TokenRecord): Uint8Array {
  checkTokenRecord(t);
  return encodeCbor({ ...t, scopes: [...t.scopes] });
}

export function decodeTokenRecord(bytes: Uint8Array): TokenRecord {
  const v = decodeCbor(bytes, "token record");
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad("record");
  const t = v as TokenRecord;
  checkTokenRecord(t);
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    token_type: t.token_type,
    scopes: [...t.scopes],
    expires_in: t.expires_in,
    obtained_at: t.obtained_at,
    expires_at: t.expires_at,
    client_id: t.client_id,
  };
}

function bad(field: string): LinkdError {
  return new LinkdError(
    Code.STORE_CORRUPT,
    `Cannot read the token record: field "${field}" is missing or malformed`,
  );
}

function checkTokenRecord(t: TokenRecord): void {
  const str = (k: keyof TokenRecord, max: number) => {
    const v = t[k];
    if (typeof v !== "string" || v.length === 0 || v.length > max) throw bad(k);
  };
  const int = (k: keyof TokenRecord, max: number) => {
    const v = t[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) throw bad(k);
  };
  str("access_token", MAX_TOKEN_BYTES);
  str("refresh_token", MAX_TOKEN_BYTES);
  str("token_type", 64);
  str("client_id", 256);
  int("expires_in", MAX_EXPIRES_IN_S);
  int("obtained_at", MAX_TIME_MS);
  int("expires_at", MAX_TIME_MS);
  if (
    !Array.isArray(t.scopes) || t.scopes.length > MAX_SCOPES ||
    !t.scopes.every((s) => typeof s === "string" && s.length > 0 && s.length <= 256)
  ) throw bad("scopes");
}
