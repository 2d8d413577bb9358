/**
 * The messages the client sends (protocol 3.0), each built as bytes: the startup packet and the
 * SSLRequest (which have no type byte), passwords and SASL, the simple Query, the extended
 * query's Parse, Bind, Describe, Execute and Sync, and Terminate. Pure functions; the caller
 * checks values (no NUL in text) before building.
 */

const enc = new TextEncoder();

/** Protocol 3.0 as the startup packet spells it. */
export const PROTOCOL_3_0 = 196608;
/** The SSLRequest code (1234 << 16 | 5679). */
export const SSL_REQUEST_CODE = 80877103;

class Out {
  #parts: Uint8Array[] = [];
  #size = 0;
  #push(b: Uint8Array): this {
    this.#parts.push(b);
    this.#size += b.length;
    return this;
  }
  int32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n);
    return this.#push(b);
  }
  int16(n: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setInt16(0, n);
    return this.#push(b);
  }
  byte(n: number): this {
    return this.#push(Uint8Array.of(n));
  }
  bytes(b: Uint8Array): this {
    return this.#push(b);
  }
  /** A C string: UTF-8 then NUL. */
  cstr(s: string): this {
    return this.#push(enc.encode(s)).byte(0);
  }
  /** The message: its type byte (none when `type` is 0), its length, its body. */
  message(type: string | 0): Uint8Array {
    const head = type === 0 ? 0 : 1;
    const out = new Uint8Array(head + 4 + this.#size);
    if (type !== 0) out[0] = type.charCodeAt(0);
    new DataView(out.buffer).setInt32(head, 4 + this.#size);
    let off = head + 4;
    for (const p of this.#parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

export function startupMessage(params: Record<string, string>): Uint8Array {
  const o = new Out().int32(PROTOCOL_3_0);
  for (const [k, v] of Object.entries(params)) o.cstr(k).cstr(v);
  return o.byte(0).message(0);
}

export function sslRequest(): Uint8Array {
  return new Out().int32(SSL_REQUEST_CODE).message(0);
}

/** PasswordMessage: a cleartext or md5 password. */
export function passwordMessage(password: string): Uint8Array {
  return new Out().cstr(password).message("p");
}

export function saslInitialResponse(mechanism: string, data: Uint8Array): Uint8Array {
  return new Out().cstr(mechanism).int32(data.length).bytes(data).message("p");
}

export function saslResponse(data: Uint8Array): Uint8Array {
  return new Out().bytes(data).message("p");
}

export function queryMessage(sql: string): Uint8Array {
  return new Out().cstr(sql).message("Q");
}

/** Parse of the unnamed statement; `types` are the parameters' OIDs (0: the server infers). */
export function parseMessage(sql: string, types: readonly number[]): Uint8Array {
  const o = new Out().cstr("").cstr(sql).int16(types.length);
  for (const t of types) o.int32(t);
  return o.message("P");
}

/** A parameter as sent: text or binary bytes, or null for SQL NULL. */
export interface WireParam {
  readonly binary: boolean;
  readonly bytes: Uint8Array | null;
}

/** Bind of the unnamed portal to the unnamed statement; every result column in text. */
export function bindMessage(params: readonly WireParam[]): Uint8Array {
  const o = new Out().cstr("").cstr("").int16(params.length);
  for (const p of params) o.int16(p.binary ? 1 : 0);
  o.int16(params.length);
  for (const p of params) {
    if (p.bytes === null) o.int32(-1);
    else o.int32(p.bytes.length).bytes(p.bytes);
  }
  return o.int16(0).message("B");
}

/** Describe of the unnamed portal. */
export function describePortal(): Uint8Array {
  return new Out().byte("P".charCodeAt(0)).cstr("").message("D");
}

/** Execute of the unnamed portal, all rows. */
export function executeMessage(): Uint8Array {
  return new Out().cstr("").int32(0).message("E");
}

/** CopyFail: the answer to a COPY FROM STDIN the client does not feed. */
export function copyFailMessage(why: string): Uint8Array {
  return new Out().cstr(why).message("f");
}

export function syncMessage(): Uint8Array {
  return new Out().message("S");
}

export function terminateMessage(): Uint8Array {
  return new Out().message("X");
}
