/**
 * HMAC-SHA-512 (RFC 2104 over tweetnacl's SHA-512) and the key derivation every linkd sealing
 * key comes from.
 *
 * Construction of `deriveKey(root, label, context)`:
 *
 *     key = HMAC-SHA-512(root, utf8(label) || 0x00 || context)[0..32)
 *
 * The label names the purpose ("linkd/v1/seal", "linkd/v1/record"); the zero byte ends it, so a
 * label can never run into its context (labels must not contain U+0000). The context binds the
 * key to data, e.g. a record's clear header. This is the same shape as HKDF-Expand with a single
 * block and ESP-IDF's HMAC-from-eFuse NVS key derivation: with a uniformly random root key the
 * output is a PRF value, so keys for different labels or contexts are independent.
 */
import { invalidArgument } from "../text.ts";
import nacl from "tweetnacl";
import { utf8, wipe } from "../bytes.ts";

/** SHA-512 input block size in bytes. */
export const HMAC_BLOCK_BYTES = 128;
/** HMAC-SHA-512 output size in bytes. */
export const HMAC_SHA512_BYTES = 64;
/** Size of every key `deriveKey` returns (a secretbox key). */
export const DERIVED_KEY_BYTES = 32;

const IPAD = 0x36;
const OPAD = 0x5c;

/** HMAC-SHA-512 of `data` under `key` (RFC 2104; keys longer than a block are hashed first). */
export function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  const k0 = new Uint8Array(HMAC_BLOCK_BYTES);
  if (key.length > HMAC_BLOCK_BYTES) {
    const hk = nacl.hash(key);
    k0.set(hk);
    wipe(hk);
  } else {
    k0.set(key);
  }

  const inner = new Uint8Array(HMAC_BLOCK_BYTES + data.length);
  for (let i = 0; i < HMAC_BLOCK_BYTES; i++) inner[i] = k0[i]! ^ IPAD;
  inner.set(data, HMAC_BLOCK_BYTES);
  const innerHash = nacl.hash(inner);

  const outer = new Uint8Array(HMAC_BLOCK_BYTES + HMAC_SHA512_BYTES);
  for (let i = 0; i < HMAC_BLOCK_BYTES; i++) outer[i] = k0[i]! ^ OPAD;
  outer.set(innerHash, HMAC_BLOCK_BYTES);
  const mac = nacl.hash(outer);

  wipe(k0);
  wipe(inner);
  wipe(innerHash);
  wipe(outer);
  return mac;
}

/**
 * Derives a 32-byte key from `root` for the purpose `label`, bound to `context` (default empty).
 * See the module comment for the construction. The caller wipes the result when done.
 */
export function deriveKey(
  root: Uint8Array,
  label: string,
  context: Uint8Array = new Uint8Array(0),
): Uint8Array {
  if (label.length === 0 || label.includes("\0")) {
    throw invalidArgument("deriveKey() label must be non-empty and must not contain U+0000");
  }
  const l = utf8.encode(label);
  const msg = new Uint8Array(l.length + 1 + context.length);
  msg.set(l, 0);
  msg[l.length] = 0x00;
  msg.set(context, l.length + 1);
  const mac = hmacSha512(root, msg);
  const key = mac.slice(0, DERIVED_KEY_BYTES);
  wipe(mac);
  wipe(msg);
  return key;
}
