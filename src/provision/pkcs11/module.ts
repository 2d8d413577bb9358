/**
 * A PKCS #11 library (module) loaded with Deno's FFI: `C_GetFunctionList` gives the
 * CK_FUNCTION_LIST, a CK_VERSION then one function pointer per call, in the order of the
 * v2.40 header (checked against p11-kit's pkcs11.h: `C_WaitForSlotEvent` sits at the end, not
 * beside the slot calls). Only the calls the line signer needs are bound.
 *
 * Layouts are those of 64-bit Linux (x86_64 and aarch64, LP64): CK_ULONG and every handle are
 * 8 bytes, pointers 8, structs padded to 8:
 *   CK_FUNCTION_LIST   version (2 bytes) at 0, function i at 8 + 8 * i
 *   CK_ATTRIBUTE       type u64 at 0, pValue at 8, ulValueLen u64 at 16 (24 bytes)
 *   CK_MECHANISM       mechanism u64 at 0, pParameter at 8, ulParameterLen u64 at 16
 *   CK_INFO            manufacturerID[32] at 2, libraryDescription[32] at 48, libraryVersion at 80
 *   CK_SLOT_INFO       slotDescription[64] at 0, manufacturerID[32] at 64, flags at 96
 *   CK_TOKEN_INFO      label[32] at 0, manufacturerID[32] at 32, model[16] at 64, serial[16] at 80,
 *                      flags at 96
 *
 * One process loads a library once: signers on the same module share it (counted), the first
 * initializes it and the last finalizes and unloads it. A library some other code of this
 * process initialized already (CKR_CRYPTOKI_ALREADY_INITIALIZED) is used and never finalized.
 * Calls fail with `CkrError` carrying the call and its CK_RV; the signer turns that into a
 * message (signer.ts).
 */
import { CKR } from "./constants.ts";

/** A PKCS #11 call that returned something other than CKR_OK. */
export class CkrError extends Error {
  constructor(readonly fn: string, readonly rv: number) {
    super(`${fn} returned 0x${rv.toString(16)}`);
    this.name = "CkrError";
  }
}

/** Why a library could not be loaded: "missing" (no file) or "not-pkcs11" (with the reason). */
export class ModuleLoadError extends Error {
  constructor(readonly kind: "missing" | "not-pkcs11", why: string) {
    super(why);
    this.name = "ModuleLoadError";
  }
}

const RV = "u64" as const;
const ULONG = "u64" as const;

/** Index of each bound call in CK_FUNCTION_LIST (after the CK_VERSION) and its C signature. */
const CALLS = {
  C_Initialize: [0, { parameters: ["pointer"], result: RV }],
  C_Finalize: [1, { parameters: ["pointer"], result: RV }],
  C_GetInfo: [2, { parameters: ["buffer"], result: RV }],
  C_GetSlotList: [4, { parameters: ["u8", "buffer", "buffer"], result: RV }],
  C_GetSlotInfo: [5, { parameters: [ULONG, "buffer"], result: RV }],
  C_GetTokenInfo: [6, { parameters: [ULONG, "buffer"], result: RV }],
  C_OpenSession: [12, { parameters: [ULONG, ULONG, "pointer", "pointer", "buffer"], result: RV }],
  C_CloseSession: [13, { parameters: [ULONG], result: RV }],
  C_Login: [18, { parameters: [ULONG, ULONG, "buffer", ULONG], result: RV }],
  C_Logout: [19, { parameters: [ULONG], result: RV }],
  C_GetAttributeValue: [24, { parameters: [ULONG, ULONG, "buffer", ULONG], result: RV }],
  C_FindObjectsInit: [26, { parameters: [ULONG, "buffer", ULONG], result: RV }],
  C_FindObjects: [27, { parameters: [ULONG, "buffer", ULONG, "buffer"], result: RV }],
  C_FindObjectsFinal: [28, { parameters: [ULONG], result: RV }],
  C_SignInit: [42, { parameters: [ULONG, "buffer", ULONG], result: RV }],
  C_Sign: [43, { parameters: [ULONG, "buffer", ULONG, "buffer", "buffer"], result: RV }],
} as const satisfies Record<string, readonly [number, Deno.UnsafeCallbackDefinition]>;

type CallName = keyof typeof CALLS;
type Fns = { [K in CallName]: Deno.UnsafeFnPointer<(typeof CALLS)[K][1]> };

/** A loaded, initialized library; `release()` once per `acquireModule`. */
export interface Pkcs11Module {
  readonly path: string;
  /** Calls `name`, throwing CkrError unless it returns CKR_OK or one of `allowed`. */
  call<K extends CallName>(
    name: K,
    args: Deno.ToNativeParameterTypes<(typeof CALLS)[K][1]["parameters"]>,
    allowed?: readonly number[],
  ): number;
  /** True when no other acquirer of this library holds it now. */
  soleUser(): boolean;
  release(): void;
}

interface Loaded {
  lib: Deno.DynamicLibrary<{ C_GetFunctionList: { parameters: ["buffer"]; result: "u64" } }>;
  fns: Fns;
  users: number;
  finalize: boolean;
}

const loaded = new Map<string, Loaded>();

/** Loads and initializes the library at `path`, or shares the one this process loaded. */
export function acquireModule(path: string): Pkcs11Module {
  let l = loaded.get(path);
  if (l === undefined) {
    l = load(path);
    loaded.set(path, l);
  }
  l.users++;
  const entry = l;
  let released = false;
  return {
    path,
    call(name, args, allowed = []) {
      if (released) throw new TypeError(`PKCS #11 module ${path} was released`);
      // deno-lint-ignore no-explicit-any
      const rv = Number((entry.fns[name] as any).call(...args));
      if (rv !== CKR.OK && !allowed.includes(rv)) throw new CkrError(name, rv);
      return rv;
    },
    soleUser: () => entry.users === 1,
    release() {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      loaded.delete(path);
      try {
        if (entry.finalize) entry.fns.C_Finalize.call(null);
      } finally {
        entry.lib.close();
      }
    },
  };
}

function load(path: string): Loaded {
  try {
    Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ModuleLoadError("missing", "file not found");
  }
  let lib: Loaded["lib"];
  try {
    lib = Deno.dlopen(path, { C_GetFunctionList: { parameters: ["buffer"], result: "u64" } });
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0]! : String(e);
    throw new ModuleLoadError(
      "not-pkcs11",
      /C_GetFunctionList/.test(why)
        ? "it has no C_GetFunctionList, so it is not a PKCS #11 library"
        : `it cannot be loaded as a library (${why.slice(why.lastIndexOf(": ") + 2)})`,
    );
  }
  try {
    const out = new BigUint64Array(1);
    const rv = Number(lib.symbols.C_GetFunctionList(out));
    const list = Deno.UnsafePointer.create(out[0]!);
    if (rv !== CKR.OK || list === null) {
      throw new ModuleLoadError("not-pkcs11", `C_GetFunctionList returned 0x${rv.toString(16)}`);
    }
    const view = new Deno.UnsafePointerView(list);
    const major = view.getUint8(0);
    if (major !== 2 && major !== 3) {
      throw new ModuleLoadError("not-pkcs11", `it speaks PKCS #11 version ${major}, not 2 or 3`);
    }
    const fns = {} as Record<string, unknown>;
    for (const [name, [index, def]] of Object.entries(CALLS)) {
      const p = view.getPointer(8 + 8 * index);
      if (p === null) throw new ModuleLoadError("not-pkcs11", `it does not provide ${name}`);
      fns[name] = new Deno.UnsafeFnPointer(p as Deno.PointerObject<typeof def>, def);
    }
    const typed = fns as Fns;
    const init = Number(typed.C_Initialize.call(null));
    if (init !== CKR.OK && init !== CKR.CRYPTOKI_ALREADY_INITIALIZED) {
      throw new CkrError("C_Initialize", init);
    }
    return { lib, fns: typed, users: 0, finalize: init === CKR.OK };
  } catch (e) {
    lib.close();
    throw e;
  }
}

// ---- memory helpers for the calls' structs

/** The address of `buf` as a CK_VOID_PTR field value (0 for an empty one). */
export function addressOf(buf: Uint8Array): bigint {
  return buf.length === 0 ? 0n : Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf));
}

/**
 * A CK_ATTRIBUTE array for `attrs` (type, value buffer); the buffers must stay referenced
 * until the call returns (the caller keeps `attrs`).
 */
export function attributeTemplate(
  attrs: ReadonlyArray<readonly [bigint, Uint8Array]>,
): Uint8Array {
  const t = new Uint8Array(24 * Math.max(1, attrs.length));
  const dv = new DataView(t.buffer);
  attrs.forEach(([type, value], i) => {
    dv.setBigUint64(24 * i, type, true);
    dv.setBigUint64(24 * i + 8, addressOf(value), true);
    dv.setBigUint64(24 * i + 16, BigInt(value.length), true);
  });
  return t;
}

/** ulValueLen of attribute `i` in a template after C_GetAttributeValue. */
export function attributeLength(template: Uint8Array, i: number): bigint {
  return new DataView(template.buffer, template.byteOffset).getBigUint64(24 * i + 16, true);
}

/** A CK_ULONG as 8 bytes (little-endian on both targets). */
export function ulong(v: bigint): Uint8Array {
  return new Uint8Array(new BigUint64Array([v]).buffer);
}

/** Text of a blank-padded fixed-size field of a PKCS #11 info struct. */
export function paddedText(struct: Uint8Array, offset: number, size: number): string {
  return new TextDecoder().decode(struct.subarray(offset, offset + size)).replace(/[ \0]+$/, "");
}
