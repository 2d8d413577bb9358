/**
 * Buffered reading of one response from a socket: bounded lines for the head and the trailers,
 * bytes on demand for the body, and a view of the buffered bytes for the chunked framing to
 * parse in place. It never holds more than its one buffer.
 */

/** The buffer's size, and so the largest body chunk handed out: 16 KiB. */
export const BUFFER_BYTES = 16 * 1024;

const LF = 0x0a;

/** Reads into `buf`; resolves with the count, or null at the end of the stream. */
export type ReadFn = (buf: Uint8Array) => Promise<number | null>;

export class Reader {
  readonly #read: ReadFn;
  readonly #buf: Uint8Array;
  #pos = 0;
  #end = 0;
  /** Bytes handed out so far, line terminators included. */
  consumed = 0;

  constructor(read: ReadFn, size: number = BUFFER_BYTES) {
    this.#read = read;
    this.#buf = new Uint8Array(size);
  }

  /** Bytes read from the socket and not yet handed out. */
  get buffered(): number {
    return this.#end - this.#pos;
  }

  /**
   * The buffered bytes, in place: valid until the next `skip`, `refill`, `line` or `bytes`. The
   * caller may overwrite the bytes it then skips (the chunked body moves its data over them).
   */
  peek(): Uint8Array {
    return this.#buf.subarray(this.#pos, this.#end);
  }

  /** Hands out the first `n` buffered bytes (`n` at most `buffered`), read in place by `peek`. */
  skip(n: number): void {
    this.#pos += n;
    this.consumed += n;
  }

  /** Refills the buffer, which must be empty (`buffered` 0); false at the end of the stream. */
  async refill(): Promise<boolean> {
    this.#pos = this.#end = 0;
    const n = await this.#read(this.#buf);
    if (n === null || n === 0) return false;
    this.#end = n;
    return true;
  }

  /**
   * One line without its LF (and without the CR before it), each byte one char (latin1). Null
   * when the stream ends before the line's first byte; a `LineError` when it ends inside the
   * line (`"eof"`) or the line with its terminator would pass `limit` bytes (`"long"`).
   */
  async line(limit: number): Promise<string | null> {
    let text = "";
    let size = 0;
    for (;;) {
      if (this.#pos === this.#end && !(await this.refill())) {
        if (size === 0) return null;
        throw new LineError("eof");
      }
      const lf = this.#buf.subarray(this.#pos, this.#end).indexOf(LF);
      const stop = lf === -1 ? this.#end : this.#pos + lf + 1;
      size += stop - this.#pos;
      if (size > limit) throw new LineError("long");
      text += latin1(this.#buf, this.#pos, lf === -1 ? stop : stop - 1);
      this.consumed += stop - this.#pos;
      this.#pos = stop;
      if (lf !== -1) return text.endsWith("\r") ? text.slice(0, -1) : text;
    }
  }

  /** Up to `max` bytes (a fresh copy), or null at the end of the stream. */
  async bytes(max: number): Promise<Uint8Array | null> {
    if (this.#pos === this.#end && !(await this.refill())) return null;
    const n = Math.min(this.#end - this.#pos, max);
    const out = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    this.consumed += n;
    return out;
  }
}

/** Why `Reader.line` gave up: the stream ended inside the line, or the line is too long. */
export class LineError extends Error {
  constructor(readonly reason: "eof" | "long") {
    super(reason === "eof" ? "Stream ended inside a line" : "Line is too long");
    this.name = "LineError";
  }
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}
