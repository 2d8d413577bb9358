/**
 * What a device's OTP root key fixes for life: its identity binding and its device key.
 *
 * - The identity binding is burnt into the OTP with the root key (seal/otp.ts), before anything
 *   is written to flash. It commits to the serial, product id and client id:
 *
 *       binding = HMAC-SHA-512(deriveKey(root, "linkd/v1/identity-binding"),
 *                              u16 len || serial || u16 len || product id || u16 len || client id)[0..32)
 *
 *   (lengths big-endian, strings UTF-8; the lengths make the encoding unambiguous). Only the
 *   root key's holder can make or check one, and a different identity never matches.
 * - The device's Ed25519 seed is `deriveKey(root, "linkd/v1/device-key/ed25519")`: the same key
 *   pair whenever the identity is written again (an interrupted provisioning, a repair), so the
 *   device never gets a second key either.
 *
 * Every output is derived with its own label (seal/hmac.ts), so none reveals another.
 */
import { timingSafeEqual, utf8, wipe } from "../bytes.ts";
import { deriveKey, hmacSha512 } from "./hmac.ts";

/** Bytes of an identity binding. */
export const IDENTITY_BINDING_BYTES = 32;

const BINDING_LABEL = "linkd/v1/identity-binding";
const DEVICE_KEY_LABEL = "linkd/v1/device-key/ed25519";

/** The fields an identity binding commits to. */
export interface BoundIdentity {
  readonly serial: string;
  readonly productId: string;
  readonly clientId: string;
}

/** The identity binding of `id` under `root` (the caller wipes `root`). */
export function identityBinding(root: Uint8Array, id: BoundIdentity): Uint8Array {
  const parts = [id.serial, id.productId, id.clientId].map((s) => utf8.encode(s));
  const msg = new Uint8Array(parts.reduce((n, p) => n + 2 + p.length, 0));
  let o = 0;
  for (const p of parts) {
    if (p.length > 0xffff) throw new RangeError("identityBinding() field is too long");
    msg[o++] = p.length >> 8;
    msg[o++] = p.length & 0xff;
    msg.set(p, o);
    o += p.length;
  }
  const key = deriveKey(root, BINDING_LABEL);
  const mac = hmacSha512(key, msg);
  const out = mac.slice(0, IDENTITY_BINDING_BYTES);
  wipe(key);
  wipe(mac);
  return out;
}

/** True when `binding` is the identity binding of `id` under `root` (constant time). */
export function bindingMatches(
  root: Uint8Array,
  binding: Uint8Array,
  id: BoundIdentity,
): boolean {
  const want = identityBinding(root, id);
  const ok = timingSafeEqual(want, binding);
  wipe(want);
  return ok;
}

/** The device's Ed25519 seed (32 bytes; the caller wipes it). */
export function deviceSeed(root: Uint8Array): Uint8Array {
  return deriveKey(root, DEVICE_KEY_LABEL);
}
