/**
 * The factory line's signer (CONTRACT.md section 3, `--line-key`): what signs the identity
 * records, whether the Ed25519 key sits in a file or in an HSM.
 *
 * - `openLineSigner(value)`: a value starting with `pkcs11:` is a PKCS #11 URI (RFC 7512,
 *   pkcs11/uri.ts) and the key signs inside the HSM with CKM_EDDSA (pkcs11/signer.ts); anything
 *   else is a key file (a 32-byte seed, raw or hex; refused when group or others may read it:
 *   line_files.ts), whose bytes are wiped as soon as the key pair is derived.
 * - An HSM's signature is trusted by no one: every one is verified with tweetnacl against the
 *   token's public key before it is returned, and one that does not verify is BAD_LINE_KEY (65)
 *   before anything is written. The signer also signs a probe when it opens, so a token whose
 *   public key object belongs to another key is refused before the first device.
 * - `close()` wipes a seed signer's secret key and logs out of / closes the HSM session.
 */
import nacl from "tweetnacl";
import { Code, LinkdError } from "../errors.ts";
import { readLineKeyFile } from "./line_files.ts";
import { parseLineKey } from "./line_signature.ts";
import { openPkcs11Signer } from "./pkcs11/signer.ts";
import { parsePkcs11Uri, PKCS11_SCHEME } from "./pkcs11/uri.ts";

export interface LineSigner {
  /** The line's 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The 64-byte detached Ed25519 signature over `message`. */
  sign(message: Uint8Array): Uint8Array;
  /** Wipes the key / ends the HSM session; the signer signs no more. */
  close(): void;
}

/**
 * A signer holding the key pair of `seed` (32 bytes) in memory. The seed is copied: the
 * caller wipes its own; close() wipes the copy.
 */
export function seedSigner(seed: Uint8Array): LineSigner {
  const pair = nacl.sign.keyPair.fromSeed(seed);
  let closed = false;
  return {
    publicKey: pair.publicKey,
    sign(message) {
      if (closed) throw new TypeError("the line signer is closed");
      return nacl.sign.detached(message, pair.secretKey);
    },
    close() {
      closed = true;
      pair.secretKey.fill(0);
    },
  };
}

/** Opens the line key `value` names: a `pkcs11:` URI, else a key file's path. */
export function openLineSigner(value: string): LineSigner {
  if (value.startsWith(PKCS11_SCHEME)) {
    const uri = parsePkcs11Uri(value);
    return verifiedSigner(openPkcs11Signer(uri), uri.display);
  }
  const raw = readLineKeyFile(value);
  let seed: Uint8Array | undefined;
  try {
    seed = parseLineKey(raw, value);
    return seedSigner(seed);
  } finally {
    seed?.fill(0);
    raw.fill(0);
  }
}

/** What each signature must verify over when a signer opens. */
const PROBE = new TextEncoder().encode("linkd line key probe");

/**
 * Wraps a signer whose signatures are not to be trusted (an HSM): each signature is checked
 * against `inner.publicKey` with tweetnacl, and BAD_LINE_KEY is thrown for one that fails.
 * Signs a probe first; closes `inner` when that fails.
 */
export function verifiedSigner(inner: LineSigner, name: string): LineSigner {
  const publicKey = inner.publicKey.slice();
  const sign = (message: Uint8Array, what: string): Uint8Array => {
    const signature = inner.sign(message);
    if (
      signature.length !== nacl.sign.signatureLength ||
      !nacl.sign.detached.verify(message, signature, publicKey)
    ) {
      throw new LinkdError(
        Code.BAD_LINE_KEY,
        `Cannot ${what} line key ${name}: the HSM returned a signature (${signature.length} bytes) that does not verify with the token's public key; check that the token's public and private key objects belong together, and the HSM`,
      );
    }
    return signature;
  };
  try {
    sign(PROBE, "open the");
  } catch (e) {
    inner.close();
    throw e;
  }
  return {
    publicKey,
    sign: (message) => sign(message, "sign with the"),
    close: () => inner.close(),
  };
}
