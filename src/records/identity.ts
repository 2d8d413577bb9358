/**
 * The device identity record written by the factory line (CONTRACT.md section 3, vault slot
 * IDENTITY), the envelope that carries it with the line's signature, and the rules for the
 * serial, product id and client id it names.
 *
 * `record` is the CBOR encoding of {serial, product_id, client_id, device_public_key,
 * provisioned_at}; the envelope is the CBOR map {record, signature?, line_public_key?} that the
 * vault stores and `--record-out` writes. Field checks name the field and never echo unprintable
 * input. Making and checking the line's signature is the line's business (provision/): this file
 * only carries the signature's bytes and checks their size, so reading an identity at boot loads
 * no signing code.
 */
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

/**
 * The way out for a device whose identity record is damaged or lost (status and provision name
 * it): the line gives the same identity back, never a new one (provision/provision.ts repair).
 */
export const REPAIR_HINT =
  "linkd repair --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE], with the identity the line recorded for this device";
/** Bytes of an Ed25519 public key (the device's and the line's). */
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Bytes of an Ed25519 signature (the line's). */
export const ED25519_SIGNATURE_BYTES = 64;

function whatIsWrong(value: string, max: number): string {
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
      `Cannot provision: ${what} must be ${rule}; ${whatIsWrong(value, max)}`,
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

export function encodeIdentity(id: Identity): Uint8Array {
  return encodeCbor({
    serial: id.serial,
    product_id: id.product_id,
    client_id: id.client_id,
    device_public_key: id.device_public_key,
    provisioned_at: id.provisioned_at,
  });
}

/** The identity with its encoded record and no line signature (provision/ signs one). */
export function unsignedIdentity(id: Identity): SignedIdentity {
  return { identity: id, record: encodeIdentity(id) };
}

/** The envelope: {record, signature?, line_public_key?}. */
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
 * The identity in the CBOR bytes of an identity record (the envelope's `record`), every field
 * checked; IDENTITY_CORRUPT naming the first bad one.
 */
export function decodeIdentityRecord(record: Uint8Array): Identity {
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
      if (!(v instanceof Uint8Array) || v.length !== ED25519_PUBLIC_KEY_BYTES) {
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
  return identity;
}

/**
 * Decodes and checks an envelope read back from flash: every field, and the signature's and line
 * key's sizes. It does not verify the line signature: on the device the envelope is
 * authenticated by its MAC under the device's root key (Vault.identity()), which nobody without
 * that key can forge, so an Ed25519 verification at every boot would prove nothing more, and it
 * costs 75 ms on this machine's interpreter-only V8 (more than the rest of the boot). Whoever
 * needs the line's word (a test, the line's own tools) calls verifyLineSignature()
 * (provision/line_signature.ts).
 */
export function decodeEnvelope(bytes: Uint8Array): SignedIdentity {
  const m = decodeCbor(bytes, "identity envelope");
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw corrupt("envelope");
  const env = m as Record<string, unknown>;
  const record = env.record;
  if (!(record instanceof Uint8Array) || record.length > 4096) throw corrupt("record");
  const identity = decodeIdentityRecord(record);
  const out: { -readonly [K in keyof SignedIdentity]: SignedIdentity[K] } = { identity, record };
  if (env.signature !== undefined || env.line_public_key !== undefined) {
    const sig = env.signature;
    const pk = env.line_public_key;
    if (!(sig instanceof Uint8Array) || sig.length !== ED25519_SIGNATURE_BYTES) {
      throw corrupt("signature");
    }
    if (!(pk instanceof Uint8Array) || pk.length !== ED25519_PUBLIC_KEY_BYTES) {
      throw corrupt("line_public_key");
    }
    out.signature = sig;
    out.line_public_key = pk;
  }
  return out;
}
