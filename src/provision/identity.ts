/**
 * The device identity record written by the factory line (CONTRACT.md section 3), its
 * validation, and the envelope the line signs.
 *
 * `record` is the CBOR encoding of {serial, product_id, client_id, device_public_key,
 * provisioned_at}; the envelope is the CBOR map {record, signature?, line_public_key?} that
 * `--record-out` writes. Field checks name the field and never echo unprintable input.
 */
import nacl from "tweetnacl";
import { fromHex, toHex } from "../bytes.ts";
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { Code, type ErrorCode, LinkdError } from "../errors.ts";

export interface Identity {
  readonly serial: string;
  readonly product_id: string;
  readonly client_id: string;
  readonly device_public_key: Uint8Array;
  readonly provisioned_at: number;
}

export interface SignedIdentity {
  readonly identity: Identity;
  /** The exact bytes of the CBOR-encoded identity record. */
  readonly record: Uint8Array;
  readonly signature?: Uint8Array;
  readonly line_public_key?: Uint8Array;
}

export const SERIAL_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const ED25519_SEED_BYTES = 32;

function describe(value: string, max: number): string {
  if (value.length === 0) return "it is empty";
  if (value.length > max) return `it has ${value.length} characters`;
  const bad = [...value].findIndex((c) => c < "\x21" || c > "\x7e");
  if (bad >= 0) return `character ${bad + 1} is not printable ASCII`;
  return `"${value}" has a character outside the allowed set`;
}

function checkField(
  value: string,
  ok: RegExp,
  code: ErrorCode,
  what: string,
  rule: string,
  max: number,
) {
  if (!ok.test(value)) {
    throw new LinkdError(
      code,
      `Cannot provision: ${what} must be ${rule}; ${describe(value, max)}`,
    );
  }
}

/** Validates the factory line's inputs before anything is written. */
export function checkIdentityInputs(serial: string, productId: string, clientId: string): void {
  checkField(
    serial,
    SERIAL_PATTERN,
    Code.BAD_SERIAL,
    "the serial",
    "1 to 64 characters of A-Z a-z 0-9 . _ -",
    64,
  );
  checkField(
    productId,
    /^[\x21-\x7e]{1,128}$/,
    Code.BAD_PRODUCT_ID,
    "the product id",
    "1 to 128 printable ASCII characters without spaces",
    128,
  );
  checkField(
    clientId,
    /^[\x21-\x7e]{1,256}$/,
    Code.BAD_CLIENT_ID,
    "the client id",
    "1 to 256 printable ASCII characters without spaces",
    256,
  );
}

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

export function encodeIdentity(id: Identity): Uint8Array {
  return encodeCbor({
    serial: id.serial,
    product_id: id.product_id,
    client_id: id.client_id,
    device_public_key: id.device_public_key,
    provisioned_at: id.provisioned_at,
  });
}

/** Signs the record with the line's seed, when one is given. */
export function signIdentity(id: Identity, lineSeed?: Uint8Array): SignedIdentity {
  const record = encodeIdentity(id);
  if (!lineSeed) return { identity: id, record };
  const pair = nacl.sign.keyPair.fromSeed(lineSeed);
  const signature = nacl.sign.detached(record, pair.secretKey);
  pair.secretKey.fill(0);
  return { identity: id, record, signature, line_public_key: pair.publicKey };
}

/** The `--record-out` map: {record, signature?, line_public_key?}. */
export function encodeEnvelope(s: SignedIdentity): Uint8Array {
  const m: Record<string, Uint8Array> = { record: s.record };
  if (s.signature) m.signature = s.signature;
  if (s.line_public_key) m.line_public_key = s.line_public_key;
  return encodeCbor(m);
}

function corrupt(field: string): LinkdError {
  return new LinkdError(
    Code.IDENTITY_CORRUPT,
    `Cannot read the identity record: field "${field}" is missing or malformed`,
  );
}

/**
 * Decodes and checks an envelope read back from flash: every field, and the signature's and line
 * key's sizes. It does not verify the line signature: on the device the envelope is
 * authenticated by its MAC under the device's root key (Vault.identity()), which nobody without
 * that key can forge, so an Ed25519 verification at every boot would prove nothing more, and it
 * costs 75 ms on this machine's interpreter-only V8 (more than the rest of the boot). Whoever
 * needs the line's word (a test, the line's own tools) calls verifyLineSignature().
 */
export function decodeEnvelope(bytes: Uint8Array): SignedIdentity {
  const m = decodeCbor(bytes, "identity envelope");
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw corrupt("envelope");
  const env = m as Record<string, unknown>;
  const record = env.record;
  if (!(record instanceof Uint8Array) || record.length > 4096) throw corrupt("record");
  const r = decodeCbor(record, "identity record");
  if (r === null || typeof r !== "object" || Array.isArray(r)) throw corrupt("record");
  const f = r as Record<string, unknown>;
  const str = (k: string, max: number) => {
    const v = f[k];
    if (typeof v !== "string" || v.length < 1 || v.length > max) throw corrupt(k);
    return v;
  };
  const identity: Identity = {
    serial: str("serial", 64),
    product_id: str("product_id", 128),
    client_id: str("client_id", 256),
    device_public_key: (() => {
      const v = f.device_public_key;
      if (!(v instanceof Uint8Array) || v.length !== nacl.sign.publicKeyLength) {
        throw corrupt("device_public_key");
      }
      return v;
    })(),
    provisioned_at: (() => {
      const v = f.provisioned_at;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        throw corrupt("provisioned_at");
      }
      return v;
    })(),
  };
  if (!SERIAL_PATTERN.test(identity.serial)) throw corrupt("serial");
  const out: { -readonly [K in keyof SignedIdentity]: SignedIdentity[K] } = { identity, record };
  if (env.signature !== undefined || env.line_public_key !== undefined) {
    const sig = env.signature;
    const pk = env.line_public_key;
    if (!(sig instanceof Uint8Array) || sig.length !== nacl.sign.signatureLength) {
      throw corrupt("signature");
    }
    if (!(pk instanceof Uint8Array) || pk.length !== nacl.sign.publicKeyLength) {
      throw corrupt("line_public_key");
    }
    out.signature = sig;
    out.line_public_key = pk;
  }
  return out;
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
