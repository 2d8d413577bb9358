/**
 * Reads the bodies of the server's messages. Each reader checks the body fully: a field cut
 * short, bytes left over, a count out of range or text that is not UTF-8 is a PgError "08006"
 * (the server broke the protocol), so the client never acts on half a message.
 */
import { CONNECTION_FAILURE, PgError } from "./errors.ts";

/** PostgreSQL's own limit on the columns of a result. */
export const MAX_COLUMNS = 1664;

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function protocolError(why: string): PgError {
  return new PgError(CONNECTION_FAILURE, `Cannot understand the PostgreSQL server: ${why}`);
}

/** A bounded cursor over one body; `what` names the message in errors. */
export class Cursor {
  #off = 0;
  constructor(readonly body: Uint8Array, readonly what: string) {}

  #need(n: number): void {
    if (this.#off + n > this.body.length) throw protocolError(`${this.what} is cut short`);
  }
  int32(): number {
    this.#need(4);
    const v = new DataView(this.body.buffer, this.body.byteOffset + this.#off, 4).getInt32(0);
    this.#off += 4;
    return v;
  }
  int16(): number {
    this.#need(2);
    const v = new DataView(this.body.buffer, this.body.byteOffset + this.#off, 2).getInt16(0);
    this.#off += 2;
    return v;
  }
  byte(): number {
    this.#need(1);
    return this.body[this.#off++]!;
  }
  bytes(n: number): Uint8Array {
    this.#need(n);
    const b = this.body.subarray(this.#off, this.#off + n);
    this.#off += n;
    return b;
  }
  /** The rest of the body. */
  rest(): Uint8Array {
    return this.bytes(this.body.length - this.#off);
  }
  /** A NUL-terminated UTF-8 string. */
  cstr(): string {
    const nul = this.body.indexOf(0, this.#off);
    if (nul < 0) throw protocolError(`${this.what} has a string without its end`);
    const s = text(this.body.subarray(this.#off, nul), this.what);
    this.#off = nul + 1;
    return s;
  }
  /** Refuses bytes left over. */
  end(): void {
    if (this.#off !== this.body.length) throw protocolError(`${this.what} has bytes left over`);
  }
}

export function text(b: Uint8Array, what: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw protocolError(`${what} holds text that is not UTF-8`);
  }
}

export type AuthRequest =
  | { readonly kind: "ok" }
  | { readonly kind: "cleartext" }
  | { readonly kind: "md5"; readonly salt: Uint8Array }
  | { readonly kind: "sasl"; readonly mechanisms: readonly string[] }
  | { readonly kind: "sasl-continue"; readonly data: Uint8Array }
  | { readonly kind: "sasl-final"; readonly data: Uint8Array }
  | { readonly kind: "other"; readonly code: number };

/** AuthenticationXXX ('R'). */
export function readAuth(body: Uint8Array): AuthRequest {
  const c = new Cursor(body, "an authentication request");
  const code = c.int32();
  switch (code) {
    case 0:
      c.end();
      return { kind: "ok" };
    case 3:
      c.end();
      return { kind: "cleartext" };
    case 5: {
      const salt = c.bytes(4);
      c.end();
      return { kind: "md5", salt };
    }
    case 10: {
      const mechanisms: string[] = [];
      for (let m = c.cstr(); m !== ""; m = c.cstr()) {
        if (mechanisms.length >= 16) throw protocolError("too many SASL mechanisms");
        mechanisms.push(m);
      }
      c.end();
      return { kind: "sasl", mechanisms };
    }
    case 11:
      return { kind: "sasl-continue", data: c.rest() };
    case 12:
      return { kind: "sasl-final", data: c.rest() };
    default:
      return { kind: "other", code };
  }
}

/** The fields of an ErrorResponse or NoticeResponse, by their one-letter codes. */
export function readErrorFields(body: Uint8Array): Map<string, string> {
  const c = new Cursor(body, "an error response");
  const out = new Map<string, string>();
  for (let t = c.byte(); t !== 0; t = c.byte()) out.set(String.fromCharCode(t), c.cstr());
  c.end();
  return out;
}

export interface Column {
  readonly name: string;
  readonly type: number;
}

/** RowDescription ('T'): the columns, all of them in text format. */
export function readRowDescription(body: Uint8Array): Column[] {
  const c = new Cursor(body, "a row description");
  const n = c.int16();
  if (n < 0 || n > MAX_COLUMNS) throw protocolError(`a row description counts ${n} columns`);
  const cols: Column[] = [];
  for (let i = 0; i < n; i++) {
    const name = c.cstr();
    c.int32(); // table OID
    c.int16(); // column number
    const type = c.int32() >>> 0;
    c.int16(); // size
    c.int32(); // modifier
    if (c.int16() !== 0) throw protocolError("a result column is not in text format");
    cols.push({ name, type });
  }
  c.end();
  return cols;
}

/** DataRow ('D'): each value's bytes or null; exactly `columns` of them. */
export function readDataRow(body: Uint8Array, columns: number): (Uint8Array | null)[] {
  const c = new Cursor(body, "a data row");
  const n = c.int16();
  if (n !== columns) throw protocolError(`a data row has ${n} values for ${columns} columns`);
  const out: (Uint8Array | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = c.int32();
    if (len < -1) throw protocolError(`a data row value has length ${len}`);
    out.push(len === -1 ? null : c.bytes(len));
  }
  c.end();
  return out;
}

/** A body that is one C string (CommandComplete 'C'), or two (ParameterStatus 'S'). */
export function readStrings(body: Uint8Array, what: string, count: 1 | 2): string[] {
  const c = new Cursor(body, what);
  const out = [c.cstr()];
  if (count === 2) out.push(c.cstr());
  c.end();
  return out;
}

/** ReadyForQuery ('Z'): the transaction status, I (idle), T (in a block) or E (failed block). */
export function readReady(body: Uint8Array): string {
  const c = new Cursor(body, "a ready-for-query message");
  const s = String.fromCharCode(c.byte());
  c.end();
  if (!"ITE".includes(s)) throw protocolError(`transaction status ${JSON.stringify(s)} is unknown`);
  return s;
}
