/**
 * PKCS #11 URIs (RFC 7512) naming the factory line's Ed25519 key in an HSM, as `--line-key`
 * takes them: `pkcs11:token=line;object=line-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/line.pin`.
 *
 * - Path attributes (`;`-separated): token, manufacturer, serial, model (the token's info),
 *   library-manufacturer, library-description, library-version (the module's), slot-description,
 *   slot-manufacturer, slot-id (the slot's), object, id, type (the key). Query attributes
 *   (`&`-separated): module-path, pin-source.
 * - Values are percent-decoded: `id` as bytes, the others as UTF-8 text.
 * - Refused with BAD_LINE_KEY (65), naming the attribute: an attribute linkd does not know
 *   (vendor ones too: RFC 7512 lets a consumer that does not understand one match nothing, and
 *   a line key that silently matched a wider set would be worse), one given twice, a malformed
 *   escape or value, `module-name` (linkd has no module registry: give module-path), a type
 *   other than `private`, a missing module-path or object/id, and `pin-value`: a PIN on the
 *   command line is visible to every user in `ps` and stays in shell histories.
 * - Messages never carry a value from the query (pin-value is never echoed); they name the key
 *   by the path part (`display`).
 */
import { Code, LinkdError } from "../../errors.ts";

/** What the URI says about the module, the token and the key. Absent attributes match all. */
export interface Pkcs11Uri {
  /** The path part as given (`pkcs11:token=line;object=line-key`), for messages. */
  readonly display: string;
  readonly modulePath: string;
  /** The file holding the PIN (from `pin-source=file:...`); no login without it. */
  readonly pinFile?: string;
  readonly token?: string;
  readonly manufacturer?: string;
  readonly serial?: string;
  readonly model?: string;
  readonly libraryManufacturer?: string;
  readonly libraryDescription?: string;
  /** `library-version` as [major, minor]; "3" is [3, 0]. */
  readonly libraryVersion?: readonly [number, number];
  readonly slotDescription?: string;
  readonly slotManufacturer?: string;
  readonly slotId?: bigint;
  readonly object?: string;
  readonly id?: Uint8Array;
}

export const PKCS11_SCHEME = "pkcs11:";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const TEXT_PATH: Record<string, keyof Pkcs11Uri> = {
  token: "token",
  manufacturer: "manufacturer",
  serial: "serial",
  model: "model",
  "library-manufacturer": "libraryManufacturer",
  "library-description": "libraryDescription",
  "slot-description": "slotDescription",
  "slot-manufacturer": "slotManufacturer",
  object: "object",
};

/** Parses `value`, a `pkcs11:` URI, or throws BAD_LINE_KEY naming what is wrong. */
export function parsePkcs11Uri(value: string): Pkcs11Uri {
  if (!value.startsWith(PKCS11_SCHEME)) {
    throw bad("pkcs11:", `it does not start with ${PKCS11_SCHEME}`);
  }
  const rest = value.slice(PKCS11_SCHEME.length);
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? "" : rest.slice(q + 1);
  const display = PKCS11_SCHEME + path;
  const fail = (why: string) => bad(display, why);
  const out: Partial<Mutable<Pkcs11Uri>> = { display };
  const seen = new Set<string>();

  for (const [name, raw] of attributes(path, ";", fail)) {
    if (seen.has(name)) throw fail(`path attribute ${name} is given twice`);
    seen.add(name);
    const field = TEXT_PATH[name];
    if (field !== undefined) {
      (out as Record<string, unknown>)[field] = text(raw, name, fail);
    } else if (name === "id") {
      out.id = decode(raw, name, fail);
    } else if (name === "type") {
      const type = text(raw, name, fail);
      if (type !== "private") {
        throw fail(
          `type=${type} names no key that signs; the line key is type=private (or leave type out)`,
        );
      }
    } else if (name === "library-version") {
      const v = text(raw, name, fail);
      const m = /^(\d{1,5})(?:\.(\d{1,5}))?$/.exec(v);
      if (!m) throw fail(`library-version must be MAJOR or MAJOR.MINOR, got ${v}`);
      out.libraryVersion = [Number(m[1]), Number(m[2] ?? 0)];
    } else if (name === "slot-id") {
      const v = text(raw, name, fail);
      if (!/^\d{1,20}$/.test(v) || BigInt(v) >= 2n ** 64n) {
        throw fail(`slot-id must be a decimal number, got ${v}`);
      }
      out.slotId = BigInt(v);
    } else {
      throw fail(
        `unknown path attribute ${name}; linkd knows ${
          [...Object.keys(TEXT_PATH), "id", "type", "library-version", "slot-id"].sort().join(", ")
        }`,
      );
    }
  }

  seen.clear();
  for (const [name, raw] of attributes(query, "&", fail)) {
    if (seen.has(name)) throw fail(`query attribute ${name} is given twice`);
    seen.add(name);
    if (name === "module-path") {
      const p = text(raw, name, fail);
      if (!p.startsWith("/")) throw fail(`module-path must be an absolute path, got ${p}`);
      out.modulePath = p;
    } else if (name === "pin-source") {
      out.pinFile = pinSource(text(raw, name, fail), fail);
    } else if (name === "pin-value") {
      throw fail(
        "pin-value puts the PIN on the command line, where every user sees it in ps; put the PIN in a file only you may read (chmod 600) and give pin-source=file:PATH",
      );
    } else if (name === "module-name") {
      throw fail("module-name is not supported; give the library's file as module-path=/PATH");
    } else {
      throw fail(`unknown query attribute ${name}; linkd knows module-path, pin-source`);
    }
  }

  if (out.modulePath === undefined) {
    throw fail(
      "the PKCS #11 library is missing; add ?module-path=/PATH/TO/LIBRARY.so (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)",
    );
  }
  if (out.object === undefined && out.id === undefined) {
    throw fail("it names no key; add object=LABEL (and id=%01 when labels repeat)");
  }
  return out as Pkcs11Uri;
}

function bad(display: string, why: string): LinkdError {
  return new LinkdError(Code.BAD_LINE_KEY, `Cannot use line key ${display}: ${why}`);
}

/** Splits `part` at `sep` into [name, raw value] pairs; an empty part has none. */
function attributes(
  part: string,
  sep: string,
  fail: (why: string) => LinkdError,
): Array<[string, string]> {
  if (part === "") return [];
  return part.split(sep).map((attr) => {
    const eq = attr.indexOf("=");
    if (eq <= 0) throw fail(`attribute "${safe(attr)}" is not NAME=VALUE`);
    const name = attr.slice(0, eq);
    if (!/^[a-z0-9-]+$/.test(name)) throw fail(`attribute name "${safe(name)}" is malformed`);
    return [name, attr.slice(eq + 1)];
  });
}

/** A short, printable rendering of a part of the URI the user wrote (for a malformed part). */
function safe(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s.replace(/[^\x20-\x7e]/g, "?");
}

/** Percent-decodes `raw` to bytes; characters outside RFC 3986's set are refused. */
function decode(raw: string, name: string, fail: (why: string) => LinkdError): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === "%") {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw fail(`${name} has a malformed %-escape`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (/^[A-Za-z0-9\-._~!$'()*+,:@/|&=]$/.test(c)) {
      out.push(c.charCodeAt(0));
    } else {
      throw fail(`${name} holds "${safe(c)}", which must be %-escaped`);
    }
  }
  return new Uint8Array(out);
}

function text(raw: string, name: string, fail: (why: string) => LinkdError): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(decode(raw, name, fail));
  } catch (e) {
    if (e instanceof LinkdError) throw e;
    throw fail(`${name} is not UTF-8 text once %-decoded`);
  }
}

/** pin-source as a file path: `file:/PATH`, `file:///PATH` or `/PATH`; other schemes refused. */
function pinSource(v: string, fail: (why: string) => LinkdError): string {
  const path = v.startsWith("file://")
    ? v.slice("file://".length)
    : v.startsWith("file:")
    ? v.slice("file:".length)
    : v;
  if (!path.startsWith("/")) {
    throw fail("pin-source must be file:/ABSOLUTE/PATH of a file holding the PIN");
  }
  return path;
}
