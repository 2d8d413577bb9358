/**
 * Cuts the server's byte stream into messages: a type byte, a 4-byte length that counts itself,
 * the body. The length is checked before the body is read: less than 4, or a body bigger than
 * `maxBytes` (64 MiB by default), and an unknown type byte are refused at once, so a hostile or
 * broken server costs at most one bounded buffer. The stream ending anywhere, or the read
 * failing, is a PgError "08006" too; the connection is then unusable and the caller closes it.
 */
import { CONNECTION_FAILURE, PgError } from "./errors.ts";

/** The default bound on one message's body: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const CHUNK = 16 * 1024;

/** Reads into `buf`; the count, or null at the end of the stream. */
export type ReadFn = (buf: Uint8Array) => Promise<number | null>;

export interface BackendMessage {
  /** The type byte as a character ("R", "Z", "D", ...). */
  readonly type: string;
  readonly body: Uint8Array;
}

/** Every type byte a 3.0 server sends. */
const TYPES = new Set("RSKZENTDCI123ntsAvGHWcd".split(""));

export class Framer {
  readonly #read: ReadFn;
  readonly #max: number;
  readonly #where: string;
  readonly #buf = new Uint8Array(CHUNK);
  #pos = 0;
  #end = 0;

  /** `where` names the server in errors (`host:port`). */
  constructor(read: ReadFn, where: string, maxBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    this.#read = read;
    this.#where = where;
    this.#max = maxBytes;
  }

  #broken(why: string, cause?: unknown): PgError {
    return new PgError(
      CONNECTION_FAILURE,
      `Cannot read from the PostgreSQL server ${this.#where}: ${why}`,
      cause === undefined ? undefined : { cause },
    );
  }

  async #fill(): Promise<void> {
    if (this.#pos === this.#end) this.#pos = this.#end = 0;
    let n: number | null;
    try {
      n = await this.#read(this.#buf.subarray(this.#end));
    } catch (e) {
      if (e instanceof PgError) throw e;
      throw this.#broken("the connection failed", e);
    }
    if (n === null || n === 0) throw this.#broken("the server closed the connection");
    this.#end += n;
  }

  /** One byte (the answer to SSLRequest). */
  async byte(): Promise<number> {
    if (this.#pos === this.#end) await this.#fill();
    return this.#buf[this.#pos++]!;
  }

  /** Bytes already read past the last message (must be none after the SSLRequest answer). */
  get buffered(): number {
    return this.#end - this.#pos;
  }

  async next(): Promise<BackendMessage> {
    while (this.#end - this.#pos < 5) {
      if (this.#pos > 0) {
        this.#buf.copyWithin(0, this.#pos, this.#end);
        this.#end -= this.#pos;
        this.#pos = 0;
      }
      await this.#fill();
    }
    const type = String.fromCharCode(this.#buf[this.#pos]!);
    const length = new DataView(this.#buf.buffer, this.#pos + 1, 4).getInt32(0);
    if (!TYPES.has(type)) {
      throw this.#broken(`unknown message type 0x${this.#buf[this.#pos]!.toString(16)}`);
    }
    if (length < 4) throw this.#broken(`message length ${length} is less than 4`);
    if (length - 4 > this.#max) {
      throw this.#broken(`a message of ${length - 4} bytes is bigger than ${this.#max}`);
    }
    this.#pos += 5;
    const body = new Uint8Array(length - 4);
    let got = Math.min(body.length, this.#end - this.#pos);
    body.set(this.#buf.subarray(this.#pos, this.#pos + got));
    this.#pos += got;
    while (got < body.length) {
      if (body.length - got >= CHUNK) {
        // Straight into the body: no copy through the buffer for big rows.
        let n: number | null;
        try {
          n = await this.#read(body.subarray(got));
        } catch (e) {
          if (e instanceof PgError) throw e;
          throw this.#broken("the connection failed", e);
        }
        if (n === null || n === 0) throw this.#broken("the server closed the connection");
        got += n;
      } else {
        await this.#fill();
        const n = Math.min(body.length - got, this.#end - this.#pos);
        body.set(this.#buf.subarray(this.#pos, this.#pos + n), got);
        this.#pos += n;
        got += n;
      }
    }
    return { type, body };
  }
}
