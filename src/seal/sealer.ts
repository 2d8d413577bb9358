/**
 * Sealing of flash records with `nacl.secretbox` (XSalsa20-Poly1305), bound to a clear header.
 *
 * secretbox has no associated-data input, so the header is bound through the key instead:
 *
 *     sealRoot  = deriveKey(otpRootKey, "linkd/v1/seal")
 *     recordKey = deriveKey(sealRoot, "linkd/v1/record", encodedHeader)
 *     sealed    = encodedHeader || nonce (24) || secretbox(plaintext, nonce, recordKey)
 *
 * Any change to the header (slot type, version, sequence number, device serial) gives another
 * key and authentication fails. A record moved to another slot or replayed under another
 * sequence number still authenticates if its header is left intact, which is why `open` also
 * checks the header against what the caller expected. A copy of the flash alone reveals nothing:
 * the root key lives in the OTP part.
 *
 * Encoded header (HEADER_FIXED_BYTES = 16, then the serial):
 *
 *     offset  size  field
 *     0       3     magic "LKS"
 *     3       1     format, 1
 *     4       1     type (the record slot)
 *     5       1     version (of the record's plaintext)
 *     6       1     serial length, 1..64
 *     7       1     reserved, 0
 *     8       8     seq, unsigned big-endian, at most 2^53 - 1
 *     16      n     serial, ASCII A-Za-z0-9._-
 *
 * `open` checks in a fixed order: shape (SEAL_MALFORMED, naming the field), then authentication
 * (SEAL_AUTH), then the binding to the caller's expectation (SEAL_BINDING, naming the field).
 */
import { invalidArgument } from "../text.ts";
import nacl from "tweetnacl";
import { Code, LinkdError } from "../errors.ts";
import { wipe } from "../bytes.ts";
import { deriveKey } from "./hmac.ts";
import { ROOT_KEY_BYTES } from "./otp.ts";

/** secretbox nonce size. */
export const NONCE_BYTES = 24;
/** secretbox authenticator (Poly1305 tag) size. */
export const MAC_BYTES = 16;
/** secretbox key size. */
export const KEY_BYTES = 32;
/** Size of the encoded header before the serial. */
export const HEADER_FIXED_BYTES = 16;
/** Largest plaintext one record may seal: 16 KiB. */
export const MAX_PLAINTEXT = 16 * 1024;
/** Longest device serial. */
export const MAX_SERIAL_BYTES = 64;
/** Header magic and format. */
export const SEAL_MAGIC = "LKS";
export const SEAL_FORMAT = 1;
/** Key derivation labels (see hmac.ts). */
export const SEAL_ROOT_LABEL = "linkd/v1/seal";
export const RECORD_LABEL = "linkd/v1/record";

const MAGIC = new Uint8Array([0x4c, 0x4b, 0x53]); // "LKS"
const OFF_FORMAT = 3;
const OFF_TYPE = 4;
const OFF_VERSION = 5;
const OFF_SERIAL_LEN = 6;
const OFF_RESERVED = 7;
const OFF_SEQ = 8;
const TWO_32 = 0x1_0000_0000;
const SERIAL_RE = /^[A-Za-z0-9._-]{1,64}$/;

// Keep the named constants honest against the library.
if (
  nacl.secretbox.nonceLength !== NONCE_BYTES || nacl.secretbox.overheadLength !== MAC_BYTES ||
  nacl.secretbox.keyLength !== KEY_BYTES
) {
  throw new Error("tweetnacl secretbox sizes differ from sealer.ts constants");
}

export interface SealHeader {
  /** u8: the record slot. */
  type: number;
  /** u8: the plaintext's format version. */
  version: number;
  /** u53 integer: the store's sequence number. */
  seq: number;
  /** Device serial, 1..64 chars of A-Za-z0-9._- */
  serial: string;
}

/** What `open` requires the header to say. */
export interface SealExpect {
  type: number;
  seq: number;
  serial: string;
}

export interface Opened {
  header: SealHeader;
  plaintext: Uint8Array;
}

/** Bytes a sealed record adds to its plaintext, for a serial of `serialLength` characters. */
export function sealOverhead(serialLength: number): number {
  if (!Number.isInteger(serialLength) || serialLength < 1 || serialLength > MAX_SERIAL_BYTES) {
    throw invalidArgument(`sealOverhead() serial length must be 1..${MAX_SERIAL_BYTES}`);
  }
  return HEADER_FIXED_BYTES + serialLength + NONCE_BYTES + MAC_BYTES;
}

const isU8 = (n: unknown): n is number =>
  Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xff;
const isSeq = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
const isSerial = (s: unknown): s is string => typeof s === "string" && SERIAL_RE.test(s);

/** Returns the first header field that is out of range, with a description, else null. */
function headerProblem(h: SealHeader): string | null {
  if (!isU8(h.type)) return `header field "type" must be an integer 0..255, got ${String(h.type)}`;
  if (!isU8(h.version)) {
    return `header field "version" must be an integer 0..255, got ${String(h.version)}`;
  }
  if (!isSeq(h.seq)) {
    return `header field "seq" must be an integer 0..2^53-1, got ${String(h.seq)}`;
  }
  if (!isSerial(h.serial)) {
    return `header field "serial" must be 1..${MAX_SERIAL_BYTES} characters of A-Za-z0-9._-`;
  }
  return null;
}

/** Encodes a header (SEAL_MALFORMED naming the field when one is out of range). */
export function encodeHeader(header: SealHeader): Uint8Array {
  const problem = headerProblem(header);
  if (problem !== null) {
    throw new LinkdError(Code.SEAL_MALFORMED, `Cannot seal record: ${problem}`);
  }
  const n = header.serial.length;
  const out = new Uint8Array(HEADER_FIXED_BYTES + n);
  out.set(MAGIC, 0);
  out[OFF_FORMAT] = SEAL_FORMAT;
  out[OFF_TYPE] = header.type;
  out[OFF_VERSION] = header.version;
  out[OFF_SERIAL_LEN] = n;
  out[OFF_RESERVED] = 0;
  const dv = new DataView(out.buffer);
  dv.setUint32(OFF_SEQ, Math.floor(header.seq / TWO_32));
  dv.setUint32(OFF_SEQ + 4, header.seq % TWO_32);
  for (let i = 0; i < n; i++) out[HEADER_FIXED_BYTES + i] = header.serial.charCodeAt(i);
  return out;
}

interface Parsed {
  header: SealHeader;
  headerLength: number;
}

/** Checks the shape of a sealed record and decodes its header; nothing is authenticated yet. */
function parse(sealed: Uint8Array, action: string): Parsed {
  const malformed = (what: string) => new LinkdError(Code.SEAL_MALFORMED, `${action}: ${what}`);
  if (sealed.length < HEADER_FIXED_BYTES) {
    throw malformed(
      `"length" is ${sealed.length} bytes, shorter than the ${HEADER_FIXED_BYTES}-byte header`,
    );
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (sealed[i] !== MAGIC[i]) throw malformed(`"magic" is not "${SEAL_MAGIC}"`);
  }
  if (sealed[OFF_FORMAT] !== SEAL_FORMAT) {
    throw malformed(`"format" is ${sealed[OFF_FORMAT]}, expected ${SEAL_FORMAT}`);
  }
  if (sealed[OFF_RESERVED] !== 0) {
    throw malformed(`"reserved" is ${sealed[OFF_RESERVED]}, expected 0`);
  }
  const n = sealed[OFF_SERIAL_LEN]!;
  if (n < 1 || n > MAX_SERIAL_BYTES) {
    throw malformed(`"serial length" is ${n}, expected 1..${MAX_SERIAL_BYTES}`);
  }
  const headerLength = HEADER_FIXED_BYTES + n;
  const minimum = headerLength + NONCE_BYTES + MAC_BYTES;
  if (sealed.length < minimum) {
    throw malformed(
      `"length" is ${sealed.length} bytes, shorter than the ${minimum} bytes of header, nonce and MAC`,
    );
  }
  if (sealed.length - minimum > MAX_PLAINTEXT) {
    throw malformed(
      `"length" is ${sealed.length} bytes, more than a ${MAX_PLAINTEXT}-byte plaintext needs`,
    );
  }
  const dv = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const hi = dv.getUint32(OFF_SEQ);
  const lo = dv.getUint32(OFF_SEQ + 4);
  if (hi >= 0x20_0000) throw malformed(`"seq" is larger than 2^53-1`);
  const seq = hi * TWO_32 + lo;
  let serial = "";
  for (let i = 0; i < n; i++) serial += String.fromCharCode(sealed[HEADER_FIXED_BYTES + i]!);
  if (!SERIAL_RE.test(serial)) throw malformed(`"serial" has characters outside A-Za-z0-9._-`);
  const header: SealHeader = Object.freeze({
    type: sealed[OFF_TYPE]!,
    version: sealed[OFF_VERSION]!,
    seq,
    serial,
  });
  return { header, headerLength };
}

export class Sealer {
  #sealRoot: Uint8Array | null;
  readonly #random: (n: number) => Uint8Array;

  /**
   * `rootKey` is the OTP root key (32 bytes); the sealer keeps only the derived seal root, and
   * the caller may wipe `rootKey` afterwards. `random(n)` returns `n` random bytes, e.g.
   * `nacl.randomBytes`; tests inject a fixed one for known-answer vectors.
   */
  constructor(rootKey: Uint8Array, random: (n: number) => Uint8Array) {
    if (rootKey.length !== ROOT_KEY_BYTES) {
      throw invalidArgument(
        `Sealer root key must be ${ROOT_KEY_BYTES} bytes, got ${rootKey.length}`,
      );
    }
    this.#sealRoot = deriveKey(rootKey, SEAL_ROOT_LABEL);
    this.#random = random;
  }

  /** Seals `plaintext` (at most MAX_PLAINTEXT bytes) under `header`. */
  seal(header: SealHeader, plaintext: Uint8Array): Uint8Array {
    const root = this.#root();
    if (plaintext.length > MAX_PLAINTEXT) {
      throw new LinkdError(
        Code.SEAL_MALFORMED,
        `Cannot seal record: plaintext is ${plaintext.length} bytes, more than the ${MAX_PLAINTEXT} allowed`,
      );
    }
    const head = encodeHeader(header);
    const nonce = this.#random(NONCE_BYTES);
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
      throw invalidArgument(`Sealer random(${NONCE_BYTES}) returned the wrong number of bytes`);
    }
    const key = deriveKey(root, RECORD_LABEL, head);
    const box = nacl.secretbox(plaintext, nonce, key);
    wipe(key);
    const out = new Uint8Array(head.length + NONCE_BYTES + box.length);
    out.set(head, 0);
    out.set(nonce, head.length);
    out.set(box, head.length + NONCE_BYTES);
    return out;
  }

  /**
   * Opens a sealed record and checks it is the one the caller expected: SEAL_MALFORMED for a
   * bad shape, SEAL_AUTH when authentication fails (tampered, or another device's key),
   * SEAL_BINDING when an intact record belongs to another slot, sequence number or serial.
   */
  open(sealed: Uint8Array, expect: SealExpect): Opened {
    const root = this.#root();
    if (!isU8(expect.type) || !isSeq(expect.seq) || !isSerial(expect.serial)) {
      throw invalidArgument(
        "Sealer.open() expect must hold a u8 type, a u53 seq and a valid serial",
      );
    }
    const action = "Cannot open sealed record";
    const { header, headerLength } = parse(sealed, action);
    const nonce = sealed.subarray(headerLength, headerLength + NONCE_BYTES);
    const box = sealed.subarray(headerLength + NONCE_BYTES);
    const key = deriveKey(root, RECORD_LABEL, sealed.subarray(0, headerLength));
    const plaintext = nacl.secretbox.open(box, nonce, key);
    wipe(key);
    if (plaintext === null) {
      throw new LinkdError(
        Code.SEAL_AUTH,
        `${action}: authentication failed for sequence ${header.seq}`,
      );
    }
    let problem: string | null = null;
    if (header.type !== expect.type) {
      problem = `"type" is ${header.type}, expected ${expect.type} (record from another slot)`;
    } else if (header.seq !== expect.seq) {
      problem = `"seq" is ${header.seq}, expected ${expect.seq} (replayed record)`;
    } else if (header.serial !== expect.serial) {
      problem =
        `"serial" is ${header.serial}, expected ${expect.serial} (record from another device)`;
    }
    if (problem !== null) {
      wipe(plaintext);
      throw new LinkdError(Code.SEAL_BINDING, `${action}: ${problem}`);
    }
    return { header, plaintext };
  }

  /** Checks the shape of a sealed record and returns its clear header, not authenticated. */
  parseHeader(sealed: Uint8Array): SealHeader {
    return parse(sealed, "Cannot read sealed record header").header;
  }

  /** Wipes the derived seal root; the sealer cannot be used afterwards. */
  dispose(): void {
    if (this.#sealRoot !== null) wipe(this.#sealRoot);
    this.#sealRoot = null;
  }

  #root(): Uint8Array {
    if (this.#sealRoot === null) throw invalidArgument("Sealer was disposed");
    return this.#sealRoot;
  }
}
