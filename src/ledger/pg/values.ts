/**
 * Values in and out. A parameter goes as text (numbers, bigints, booleans, strings), as binary
 * bytea (Uint8Array, declared as OID 17) or as NULL; text with NUL cannot be sent and is refused
 * before anything is. A result value is text and is read by its column's type OID: int2, int4
 * and oid as number, int8 as bigint, bool as boolean, bytea (hex or escape output) as
 * Uint8Array, everything else as string. A value that does not read as its type is the server
 * breaking the protocol: PgError "08006".
 */
import { invalidArgument } from "../../text.ts";
import { protocolError, text } from "./backend.ts";
import type { WireParam } from "./frontend.ts";

export type PgValue = string | number | bigint | boolean | Uint8Array | null;

export const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
} as const;

const enc = new TextEncoder();

/** The parameter `$n` (1-based) as sent, with the type OID it is declared as (0: inferred). */
export function encodeParam(v: PgValue, n: number): WireParam & { readonly type: number } {
  if (v === null) return { binary: false, bytes: null, type: 0 };
  if (v instanceof Uint8Array) return { binary: true, bytes: v, type: OID.bytea };
  switch (typeof v) {
    case "string":
      if (v.includes("\0")) throw invalidArgument(`Cannot send parameter $${n}: it holds NUL`);
      return { binary: false, bytes: enc.encode(v), type: 0 };
    case "number":
      return { binary: false, bytes: enc.encode(String(v)), type: 0 };
    case "bigint":
      return { binary: false, bytes: enc.encode(v.toString()), type: 0 };
    case "boolean":
      return { binary: false, bytes: enc.encode(v ? "true" : "false"), type: 0 };
    default:
      throw invalidArgument(
        `Cannot send parameter $${n}: a ${typeof v} is not a string, number, bigint, boolean, ` +
          "Uint8Array or null",
      );
  }
}

const INTEGER = /^-?[0-9]{1,20}$/;

/** A result value (text format) read by its type OID. */
export function decodeValue(b: Uint8Array | null, type: number): PgValue {
  if (b === null) return null;
  switch (type) {
    case OID.bool:
      if (b.length === 1 && b[0] === 0x74) return true;
      if (b.length === 1 && b[0] === 0x66) return false;
      throw protocolError("a bool value is neither t nor f");
    case OID.int2:
    case OID.int4:
    case OID.oid: {
      const s = text(b, "an integer value");
      if (!INTEGER.test(s) || s.length > 11) throw protocolError("an integer value is not one");
      return Number(s);
    }
    case OID.int8: {
      const s = text(b, "an int8 value");
      if (!INTEGER.test(s)) throw protocolError("an int8 value is not one");
      return BigInt(s);
    }
    case OID.bytea:
      return decodeBytea(b);
    default:
      return text(b, "a text value");
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** bytea's text output: `\x` then hex, or the escape format (`\\`, `\ooo`, plain bytes). */
export function decodeBytea(b: Uint8Array): Uint8Array {
  if (b.length >= 2 && b[0] === 0x5c && b[1] === 0x78) {
    if (b.length % 2 !== 0) throw protocolError("a bytea value has an odd number of hex digits");
    const out = new Uint8Array((b.length - 2) / 2);
    for (let i = 0; i < out.length; i++) {
      const hi = hexDigit(b[2 + 2 * i]!);
      const lo = hexDigit(b[3 + 2 * i]!);
      if (hi < 0 || lo < 0) throw protocolError("a bytea value holds a non-hex digit");
      out[i] = hi * 16 + lo;
    }
    return out;
  }
  const out = new Uint8Array(b.length);
  let n = 0;
  for (let i = 0; i < b.length;) {
    if (b[i] !== 0x5c) {
      out[n++] = b[i++]!;
    } else if (b[i + 1] === 0x5c) {
      out[n++] = 0x5c;
      i += 2;
    } else {
      const d = [b[i + 1], b[i + 2], b[i + 3]].map((c) => (c ?? 0) - 0x30);
      if (!d.every((x) => x >= 0 && x <= 7) || d[0]! > 3) {
        throw protocolError("a bytea value holds a bad escape");
      }
      out[n++] = d[0]! * 64 + d[1]! * 8 + d[2]!;
      i += 4;
    }
  }
  return out.slice(0, n);
}
