/**
 * The factory line's signature over a device's identity record (CONTRACT.md section 3): the line
 * key it signs with, the signature, its check, and the report `linkd provision` prints.
 *
 * The record and its envelope are a flash format (records/identity.ts); signing is the line's
 * alone. A linked boot never loads this file: the vault authenticates the identity with its MAC
 * under the device's root key (records/identity.ts says why that is enough).
 */
import nacl from "tweetnacl";
import { fromHex, toHex } from "../bytes.ts";
import { Code, LinkdError } from "../errors.ts";
import { type Identity, type SignedIdentity, unsignedIdentity } from "../records/identity.ts";
import type { LineSigner } from "./line_signer.ts";

export const ED25519_SEED_BYTES = 32;

/**
 * Parses a line key file: a 32-byte Ed25519 seed, raw, or as 64 hex characters with optional
 * surrounding white space.
 */
export function parseLineKey(bytes: Uint8Array, source: string): Uint8Array {
  if (bytes.length === ED25519_SEED_BYTES) return bytes.slice();
  if (bytes.length <= 200) {
    const text = new TextDecoder().decode(bytes).trim();
    const hex = fromHex(text);
    if (hex && hex.length === ED25519_SEED_BYTES) return hex;
  }
  throw new LinkdError(
    Code.BAD_LINE_KEY,
    `Cannot use line key ${source}: expected a 32-byte Ed25519 seed, raw or as 64 hex characters, got ${bytes.length} bytes`,
  );
}

/** Signs the record with the line's signer (a key file or an HSM: line_signer.ts), when given. */
export function signIdentity(id: Identity, line?: LineSigner): SignedIdentity {
  const unsigned = unsignedIdentity(id);
  if (!line) return unsigned;
  const signature = line.sign(unsigned.record);
  return { ...unsigned, signature, line_public_key: line.publicKey.slice() };
}

/**
 * True when the identity carries a line signature that verifies over its record with its line
 * key; false when it is unsigned or the signature is wrong.
 */
export function verifyLineSignature(s: SignedIdentity): boolean {
  if (!s.signature || !s.line_public_key) return false;
  return nacl.sign.detached.verify(s.record, s.signature, s.line_public_key);
}

/** The JSON line `linkd provision` prints (CONTRACT.md section 3). */
export function provisionReport(s: SignedIdentity): Record<string, string> {
  const out: Record<string, string> = {
    serial: s.identity.serial,
    product_id: s.identity.product_id,
    client_id: s.identity.client_id,
    device_public_key: toHex(s.identity.device_public_key),
    record_sha512: toHex(nacl.hash(s.record)),
  };
  if (s.signature) out.line_signature = toHex(s.signature);
  return out;
}
