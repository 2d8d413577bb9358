/**
 * The line key in an HSM: finds the token and the Ed25519 private key a PKCS #11 URI names,
 * logs in with the PIN from pin-source, reads the public key, and signs with CKM_EDDSA.
 *
 * Steps: load the module (module.ts) -> C_GetInfo (library-*) -> C_GetSlotList of slots with a
 * token -> C_GetSlotInfo / C_GetTokenInfo of initialized tokens (slot-*, token, manufacturer, serial, model; fields
 * blank-padded) -> exactly one token -> C_OpenSession (read-only) -> C_Login as CKU_USER (the
 * PIN wiped right after) -> C_FindObjects: exactly one CKO_PRIVATE_KEY with the object's
 * CKA_LABEL (and CKA_ID), of key type CKK_EC_EDWARDS -> its CKO_PUBLIC_KEY's CKA_EC_POINT (a DER
 * OCTET STRING around the 32 bytes, or the 32 bytes bare, as modules differ).
 * `close()`: C_Logout when this is the module's last user, C_CloseSession, C_Finalize.
 *
 * The signatures this returns are NOT checked here: line_signer.ts verifies each one against
 * the public key before anyone uses it. Every failure is a LinkdError naming the key by the
 * URI's path part and the CK_RV by name; LINE_KEY_MISSING (66) when the library, token or key is
 * not there, BAD_LINE_KEY (65) for the rest. The PIN is never in a message.
 */
import { Code, LinkdError } from "../../errors.ts";
import {
  CKA_CLASS,
  CKA_EC_POINT,
  CKA_ID,
  CKA_KEY_TYPE,
  CKA_LABEL,
  CKF_SERIAL_SESSION,
  CKF_TOKEN_INITIALIZED,
  CKK_EC_EDWARDS,
  CKM_EDDSA,
  CKO_PRIVATE_KEY,
  CKO_PUBLIC_KEY,
  CKR,
  ckrName,
  CKU_USER,
} from "./constants.ts";
import {
  acquireModule,
  attributeLength,
  attributeTemplate,
  CkrError,
  ModuleLoadError,
  paddedText,
  type Pkcs11Module,
  ulong,
} from "./module.ts";
import { readPinFile } from "./pin.ts";
import type { Pkcs11Uri } from "./uri.ts";

/** An Ed25519 key in a token, unchecked: see line_signer.ts. */
export interface Pkcs11Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
  close(): void;
}

const ED25519_SIGNATURE_BYTES = 64;
const ED25519_PUBLIC_KEY_BYTES = 32;

/** What to tell the operator for the CK_RVs one meets in practice. */
function hint(rv: number): string {
  switch (ckrName(rv)) {
    case "CKR_PIN_INCORRECT":
      return "the HSM refused the PIN (CKR_PIN_INCORRECT); check pin-source";
    case "CKR_PIN_LOCKED":
      return "the token's PIN is locked after too many wrong tries (CKR_PIN_LOCKED); have the security officer unlock it";
    case "CKR_PIN_EXPIRED":
      return "the token's PIN has expired (CKR_PIN_EXPIRED); set a new one";
    case "CKR_PIN_LEN_RANGE":
    case "CKR_PIN_INVALID":
      return `the HSM refused the PIN (${ckrName(rv)}); check pin-source`;
    case "CKR_USER_PIN_NOT_INITIALIZED":
      return "the token has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED); initialize the token";
    case "CKR_USER_NOT_LOGGED_IN":
      return "the HSM wants a login first (CKR_USER_NOT_LOGGED_IN); add pin-source=file:PATH to the URI";
    case "CKR_MECHANISM_INVALID":
    case "CKR_KEY_TYPE_INCONSISTENT":
    case "CKR_KEY_FUNCTION_NOT_PERMITTED":
      return `the HSM will not sign with this key by CKM_EDDSA (${
        ckrName(rv)
      }); use an Ed25519 key allowed to sign`;
    case "CKR_DEVICE_REMOVED":
    case "CKR_TOKEN_NOT_PRESENT":
      return `the token went away (${ckrName(rv)}); reconnect the HSM`;
    default:
      return `the HSM failed (${ckrName(rv)})`;
  }
}

/** Opens the key `uri` names; throws a LinkdError (never the PIN) when it cannot. */
export function openPkcs11Signer(uri: Pkcs11Uri): Pkcs11Signer {
  const name = uri.display;
  const fail = (code: typeof Code.BAD_LINE_KEY | typeof Code.LINE_KEY_MISSING, why: string) =>
    new LinkdError(code, `Cannot open the line key ${name}: ${why}`);
  const ckr = (e: unknown): unknown =>
    e instanceof CkrError
      ? new LinkdError(Code.BAD_LINE_KEY, `Cannot open the line key ${name}: ${hint(e.rv)}`, {
        cause: e,
      })
      : e;

  // The PIN file's mode is checked before any library is loaded.
  let pin = uri.pinFile === undefined ? undefined : readPinFile(uri.pinFile, name);
  let mod: Pkcs11Module;
  try {
    mod = acquireModule(uri.modulePath);
  } catch (e) {
    pin?.fill(0);
    if (e instanceof ModuleLoadError) {
      throw fail(
        e.kind === "missing" ? Code.LINE_KEY_MISSING : Code.BAD_LINE_KEY,
        `the PKCS #11 library ${uri.modulePath}: ${e.message}; check module-path`,
      );
    }
    throw ckr(e);
  }
  let session: bigint | undefined;
  try {
    const slot = findToken(mod, uri, fail);
    const out = new BigUint64Array(1);
    mod.call("C_OpenSession", [slot, CKF_SERIAL_SESSION, null, null, out]);
    session = out[0]!;
    if (pin !== undefined) {
      try {
        mod.call("C_Login", [session, CKU_USER, pin, BigInt(pin.length)], [
          CKR.USER_ALREADY_LOGGED_IN,
        ]);
      } finally {
        pin.fill(0);
        pin = undefined;
      }
    }
    const key = findPrivateKey(mod, session, uri, fail);
    const publicKey = readPublicKey(mod, session, uri, key, fail);
    const s = session;
    let closed = false;
    return {
      publicKey,
      sign(message) {
        if (closed) throw new TypeError("the line signer is closed");
        try {
          return signOnce(mod, s, key, message);
        } catch (e) {
          if (!(e instanceof CkrError)) throw e;
          throw new LinkdError(
            Code.BAD_LINE_KEY,
            `Cannot sign with the line key ${name}: ${hint(e.rv)}`,
            { cause: e },
          );
        }
      },
      close() {
        if (closed) return;
        closed = true;
        shut(mod, s);
      },
    };
  } catch (e) {
    pin?.fill(0);
    if (session !== undefined) shut(mod, session);
    else mod.release();
    throw ckr(e);
  }
}

/** Logs out (when no other signer shares the module), closes the session, releases the module. */
function shut(mod: Pkcs11Module, session: bigint): void {
  // Login state is per token for the whole process: another signer's session keeps it.
  if (mod.soleUser()) {
    try {
      mod.call("C_Logout", [session], [CKR.USER_NOT_LOGGED_IN]);
    } catch {
      // closing regardless
    }
  }
  try {
    mod.call("C_CloseSession", [session]);
  } catch {
    // the module is released regardless
  }
  mod.release();
}

type Fail = (code: typeof Code.BAD_LINE_KEY | typeof Code.LINE_KEY_MISSING, why: string) => Error;

/** The one slot whose token (and slot, and library) match `uri`. */
function findToken(mod: Pkcs11Module, uri: Pkcs11Uri, fail: Fail): bigint {
  const info = new Uint8Array(88);
  mod.call("C_GetInfo", [info]);
  const lib = {
    manufacturer: paddedText(info, 2, 32),
    description: paddedText(info, 48, 32),
    version: [info[80]!, info[81]!] as const,
  };
  if (
    (uri.libraryManufacturer !== undefined && uri.libraryManufacturer !== lib.manufacturer) ||
    (uri.libraryDescription !== undefined && uri.libraryDescription !== lib.description) ||
    (uri.libraryVersion !== undefined &&
      (uri.libraryVersion[0] !== lib.version[0] || uri.libraryVersion[1] !== lib.version[1]))
  ) {
    throw fail(
      Code.LINE_KEY_MISSING,
      `the library is "${lib.description}" by "${lib.manufacturer}", version ${lib.version[0]}.${
        lib.version[1]
      }, not the one the URI names; check module-path and library-*`,
    );
  }
  const count = new BigUint64Array(1);
  mod.call("C_GetSlotList", [1, null, count]);
  const slots = new BigUint64Array(Number(count[0]!));
  if (slots.length > 0) mod.call("C_GetSlotList", [1, slots, count]);
  const matching: bigint[] = [];
  const labels: string[] = [];
  for (const slot of slots.subarray(0, Number(count[0]!))) {
    if (uri.slotId !== undefined && uri.slotId !== slot) continue;
    const si = new Uint8Array(112);
    mod.call("C_GetSlotInfo", [slot, si]);
    if (uri.slotDescription !== undefined && uri.slotDescription !== paddedText(si, 0, 64)) {
      continue;
    }
    if (uri.slotManufacturer !== undefined && uri.slotManufacturer !== paddedText(si, 64, 32)) {
      continue;
    }
    const ti = new Uint8Array(256);
    mod.call("C_GetTokenInfo", [slot, ti]);
    // An uninitialized token (SoftHSM2 always offers one) holds no key.
    const flags = new DataView(ti.buffer).getBigUint64(96, true);
    if ((flags & CKF_TOKEN_INITIALIZED) === 0n) continue;
    const label = paddedText(ti, 0, 32);
    labels.push(label);
    if (
      (uri.token === undefined || uri.token === label) &&
      (uri.manufacturer === undefined || uri.manufacturer === paddedText(ti, 32, 32)) &&
      (uri.model === undefined || uri.model === paddedText(ti, 64, 16)) &&
      (uri.serial === undefined || uri.serial === paddedText(ti, 80, 16))
    ) {
      matching.push(slot);
    }
  }
  if (matching.length === 0) {
    throw fail(
      Code.LINE_KEY_MISSING,
      `no token of ${mod.path} matches (tokens there: ${
        labels.length ? labels.map((l) => JSON.stringify(l)).join(", ") : "none"
      }); check token= and the HSM`,
    );
  }
  if (matching.length > 1) {
    throw fail(
      Code.BAD_LINE_KEY,
      `${matching.length} tokens match; name one with token=, serial= or slot-id=`,
    );
  }
  return matching[0]!;
}

/** Runs one C_FindObjects search for `attrs`, returning up to two handles. */
function find(
  mod: Pkcs11Module,
  session: bigint,
  attrs: ReadonlyArray<readonly [bigint, Uint8Array]>,
): bigint[] {
  const template = attributeTemplate(attrs);
  mod.call("C_FindObjectsInit", [session, template, BigInt(attrs.length)]);
  try {
    const found = new BigUint64Array(2);
    const n = new BigUint64Array(1);
    mod.call("C_FindObjects", [session, found, 2n, n]);
    return [...found.subarray(0, Number(n[0]!))];
  } finally {
    mod.call("C_FindObjectsFinal", [session]);
  }
}

function keyAttributes(uri: Pkcs11Uri, cls: bigint): Array<readonly [bigint, Uint8Array]> {
  const attrs: Array<readonly [bigint, Uint8Array]> = [[CKA_CLASS, ulong(cls)]];
  if (uri.object !== undefined) attrs.push([CKA_LABEL, new TextEncoder().encode(uri.object)]);
  if (uri.id !== undefined) attrs.push([CKA_ID, uri.id]);
  return attrs;
}

function findPrivateKey(mod: Pkcs11Module, session: bigint, uri: Pkcs11Uri, fail: Fail): bigint {
  const keys = find(mod, session, keyAttributes(uri, CKO_PRIVATE_KEY));
  if (keys.length === 0) {
    throw fail(
      Code.LINE_KEY_MISSING,
      `the token holds no private key with this ${uri.id ? "object and id" : "object"}${
        uri.pinFile === undefined ? " visible without a login (add pin-source=file:PATH)" : ""
      }; check object= and id=`,
    );
  }
  if (keys.length > 1) {
    throw fail(Code.BAD_LINE_KEY, "more than one private key matches; name one with id=");
  }
  const type = attribute(mod, session, keys[0]!, CKA_KEY_TYPE);
  if (type.length !== 8 || new DataView(type.buffer).getBigUint64(0, true) !== CKK_EC_EDWARDS) {
    throw fail(Code.BAD_LINE_KEY, "the key is not an Ed25519 key (CKK_EC_EDWARDS)");
  }
  return keys[0]!;
}

/** The value of attribute `type` of `object` (two calls: its length, then its bytes). */
function attribute(mod: Pkcs11Module, session: bigint, object: bigint, type: bigint): Uint8Array {
  const probe = attributeTemplate([[type, new Uint8Array(0)]]);
  mod.call("C_GetAttributeValue", [session, object, probe, 1n]);
  const length = attributeLength(probe, 0);
  if (length > 4096n) throw new CkrError("C_GetAttributeValue", 0x13);
  const value = new Uint8Array(Number(length));
  const template = attributeTemplate([[type, value]]);
  mod.call("C_GetAttributeValue", [session, object, template, 1n]);
  return value.slice(0, Number(attributeLength(template, 0)));
}

/** The 32-byte public key from the matching public key object's CKA_EC_POINT. */
function readPublicKey(
  mod: Pkcs11Module,
  session: bigint,
  uri: Pkcs11Uri,
  privateKey: bigint,
  fail: Fail,
): Uint8Array {
  // Pair by CKA_ID when the URI gives none: labels may repeat across keys, ids rarely do.
  const withId = uri.id !== undefined
    ? uri
    : { ...uri, id: attribute(mod, session, privateKey, CKA_ID) };
  const keys = find(mod, session, keyAttributes(withId, CKO_PUBLIC_KEY));
  if (keys.length !== 1) {
    throw fail(
      Code.LINE_KEY_MISSING,
      `the token holds ${
        keys.length === 0 ? "no" : "more than one"
      } public key object with the private key's label and id, and linkd reads the public key from it; import the public key into the token`,
    );
  }
  const point = attribute(mod, session, keys[0]!, CKA_EC_POINT);
  const key = ecPoint(point);
  if (key === null) {
    throw fail(
      Code.BAD_LINE_KEY,
      `the public key's CKA_EC_POINT (${point.length} bytes) is not a 32-byte Ed25519 key`,
    );
  }
  return key;
}

/** The 32 key bytes of a CKA_EC_POINT: a DER OCTET STRING (04 20 ...) or the bytes bare. */
export function ecPoint(point: Uint8Array): Uint8Array | null {
  if (point.length === ED25519_PUBLIC_KEY_BYTES) return point.slice();
  if (point.length === 2 + ED25519_PUBLIC_KEY_BYTES && point[0] === 0x04 && point[1] === 0x20) {
    return point.slice(2);
  }
  return null;
}

/** One C_SignInit + C_Sign with CKM_EDDSA (no parameter: pure Ed25519). */
function signOnce(
  mod: Pkcs11Module,
  session: bigint,
  key: bigint,
  message: Uint8Array,
): Uint8Array {
  const mechanism = new Uint8Array(24);
  new DataView(mechanism.buffer).setBigUint64(0, CKM_EDDSA, true);
  mod.call("C_SignInit", [session, mechanism, key]);
  // A zero-length message still needs a valid pointer for some modules.
  const data = message.length === 0 ? new Uint8Array(1) : message;
  const signature = new Uint8Array(ED25519_SIGNATURE_BYTES + 64);
  const length = new BigUint64Array([BigInt(signature.length)]);
  mod.call("C_Sign", [session, data, BigInt(message.length), signature, length]);
  return signature.slice(0, Number(length[0]!));
}
