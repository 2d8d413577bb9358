/**
 * MQTT's data representations (MQTT 5 section 1.5, 3.1.1 section 1.5): big-endian integers,
 * Variable Byte Integers, UTF-8 strings and binary data, each prefixed by a two-byte length.
 *
 * `Reader` reads a hostile packet: every read is bounded by the end of the packet and a short
 * read is an MqttError (`protocol`, reason `truncated`), never a RangeError. Strings must be
 * valid UTF-8 without U+0000; a leading U+FEFF is kept, never stripped (MQTT-1.5.4-3).
 * `Writer` builds a packet from values the caller validated; it checks again and throws a
 * TypeError for a value that cannot be encoded.
 */
import { invalidArgument } from "../../text.ts";
import { protocolError } from "./errors.ts";

/** The largest Variable Byte Integer: 4 bytes of 7 bits. */
export const VARINT_MAX = 268_435_455;
/** The largest UTF-8 string or binary data: a two-byte length. */
export const STRING_MAX = 65_535;

let decoder: TextDecoder | undefined;
let encoder: TextEncoder | undefined;

/** Decodes UTF-8 strictly: invalid bytes (overlong forms, surrogates) throw; a BOM is kept. */
function utf8Decoder(): TextDecoder {
  return decoder ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
}

export function utf8Encode(s: string): Uint8Array {
  return (encoder ??= new TextEncoder()).encode(s);
}

/** Decodes a varint at `pos` of `b`; null when `b` ends first. Throws on 5 bytes. */
export function decodeVarint(
  b: Uint8Array,
  pos: number,
  end: number,
  what: string,
): { value: number; length: number } | null {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) return null;
    const byte = b[pos + i]!;
    value += (byte & 0x7f) * mult;
    if ((byte & 0x80) === 0) {
      // A longer encoding than needed ends in a zero byte (MQTT-1.5.5-1: minimum bytes).
      if (i > 0 && byte === 0) {
        throw protocolError(
          "varint_not_minimal",
          `Cannot decode ${what}: not in its shortest form`,
        );
      }
      return { value, length: i + 1 };
    }
    mult *= 128;
  }
  throw protocolError("varint_too_long", `Cannot decode ${what}: more than 4 bytes`);
}

/** The number of bytes `encodeVarint` writes for `n`. */
export function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** A bounded cursor over one packet (`packet` names it in messages, e.g. "PUBLISH"). */
export class Reader {
  readonly #b: Uint8Array;
  readonly #end: number;
  readonly packet: string;
  #pos: number;

  constructor(b: Uint8Array, packet: string, pos = 0, end = b.length) {
    this.#b = b;
    this.#pos = pos;
    this.#end = end;
    this.packet = packet;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  get position(): number {
    return this.#pos;
  }

  #need(n: number, what: string): void {
    if (n > this.#end - this.#pos) {
      throw protocolError("truncated", `Cannot decode ${this.packet}: ${what} is truncated`);
    }
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#b[this.#pos++]!;
  }

  u16(what: string): number {
    this.#need(2, what);
    const v = (this.#b[this.#pos]! << 8) | this.#b[this.#pos + 1]!;
    this.#pos += 2;
    return v;
  }

  u32(what: string): number {
    this.#need(4, what);
    const b = this.#b;
    const p = this.#pos;
    this.#pos += 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  varint(what: string): number {
    const r = decodeVarint(this.#b, this.#pos, this.#end, `${this.packet} ${what}`);
    if (r === null) {
      throw protocolError("truncated", `Cannot decode ${this.packet}: ${what} is truncated`);
    }
    this.#pos += r.length;
    return r.value;
  }

  /** `n` bytes as a view into the packet (copy before keeping it). */
  view(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const v = this.#b.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** A Reader over the next `n` bytes (a length-prefixed section); this one skips them. */
  sub(n: number, what: string): Reader {
    this.#need(n, what);
    const r = new Reader(this.#b, this.packet, this.#pos, this.#pos + n);
    this.#pos += n;
    return r;
  }

  /** Binary Data: a two-byte length and that many bytes, copied. */
  binary(what: string): Uint8Array {
    return this.view(this.u16(what), what).slice();
  }

  /** A UTF-8 Encoded String: valid UTF-8, no U+0000. */
  utf8(what: string): string {
    const bytes = this.view(this.u16(what), what);
    if (bytes.includes(0)) {
      throw protocolError("null_character", `Cannot decode ${this.packet}: ${what} holds U+0000`);
    }
    try {
      return utf8Decoder().decode(bytes);
    } catch {
      throw protocolError("invalid_utf8", `Cannot decode ${this.packet}: ${what} is not UTF-8`);
    }
  }

  /** Everything left, copied. */
  rest(): Uint8Array {
    const v = this.#b.slice(this.#pos, this.#end);
    this.#pos = this.#end;
    return v;
  }

  /** Requires the packet to be fully read. */
  end(): void {
    if (this.#pos !== this.#end) {
      throw protocolError(
        "trailing_bytes",
        `Cannot decode ${this.packet}: ${this.#end - this.#pos} bytes after the last field`,
      );
    }
  }
}

/** A growing byte buffer for one packet. */
export class Writer {
  #b: Uint8Array;
  #len = 0;

  constructor(capacity = 64) {
    this.#b = new Uint8Array(capacity);
  }

  get length(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#b.length) return;
    const next = new Uint8Array(Math.max(this.#b.length * 2, this.#len + n));
    next.set(this.#b.subarray(0, this.#len));
    this.#b = next;
  }

  u8(v: number): this {
    this.#room(1);
    this.#b[this.#len++] = v & 0xff;
    return this;
  }

  u16(v: number, what = "value"): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw invalidArgument(`Cannot encode ${what}: not an integer from 0 to 65535`);
    }
    this.#room(2);
    this.#b[this.#len++] = v >>> 8;
    this.#b[this.#len++] = v & 0xff;
    return this;
  }

  u32(v: number, what = "value"): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw invalidArgument(`Cannot encode ${what}: not an integer from 0 to 4294967295`);
    }
    this.#room(4);
    this.#b[this.#len++] = v >>> 24;
    this.#b[this.#len++] = (v >>> 16) & 0xff;
    this.#b[this.#len++] = (v >>> 8) & 0xff;
    this.#b[this.#len++] = v & 0xff;
    return this;
  }

  varint(v: number, what = "value"): this {
    if (!Number.isInteger(v) || v < 0 || v > VARINT_MAX) {
      throw invalidArgument(`Cannot encode ${what}: not an integer from 0 to ${VARINT_MAX}`);
    }
    this.#room(4);
    do {
      let byte = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) byte |= 0x80;
      this.#b[this.#len++] = byte;
    } while (v > 0);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#b.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  binary(b: Uint8Array, what = "binary data"): this {
    if (b.length > STRING_MAX) {
      throw invalidArgument(`Cannot encode ${what}: longer than ${STRING_MAX} bytes`);
    }
    return this.u16(b.length).bytes(b);
  }

  utf8(s: string, what = "string"): this {
    checkString(s, what);
    return this.binary(utf8Encode(s), what);
  }

  /** The bytes written so far (a view; the writer must not be used afterwards). */
  finish(): Uint8Array {
    return this.#b.subarray(0, this.#len);
  }
}

/**
 * Throws a TypeError unless `s` can be an MQTT UTF-8 string: well-formed UTF-16 (no lone
 * surrogate), no U+0000, at most 65535 bytes of UTF-8. The message names `what`, not the value.
 */
export function checkString(s: unknown, what: string): asserts s is string {
  if (typeof s !== "string") throw invalidArgument(`Invalid ${what}: not a string`);
  if (s.includes("\u0000")) throw invalidArgument(`Invalid ${what}: holds U+0000`);
  if (!s.isWellFormed()) throw invalidArgument(`Invalid ${what}: holds a lone surrogate`);
  // Every UTF-16 code unit is at most 3 bytes of UTF-8.
  if (s.length * 3 > STRING_MAX && utf8Encode(s).length > STRING_MAX) {
    throw invalidArgument(`Invalid ${what}: longer than ${STRING_MAX} bytes of UTF-8`);
  }
}
