/**
 * The framing of a chunked body (RFC 9112 section 7.1), parsed byte by byte in the reader's
 * buffer: chunk-size lines (extensions skipped, never copied; each line at most
 * `MAX_CHUNK_LINE_BYTES`), and the line end after each chunk's data. It keeps a few numbers and
 * makes no string or copy per wire chunk, so a body sent as thousands of tiny chunks costs about
 * what one sent whole does. The caller takes the chunk data out and reads the trailer section.
 */
import { invalid } from "./_head.ts";

/** Longest chunk-size line, extensions and line end included. */
export const MAX_CHUNK_LINE_BYTES = 4096;

/** Most hex digits in a chunk size: 13 keep it a safe integer (below 2^53). */
const MAX_SIZE_DIGITS = 13;

const HT = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const SEMICOLON = 0x3b;

/**
 * Where the framing is: in a chunk-size line (its hex digits, the blanks after them, its
 * extensions, or after its CR), in a chunk's data, at the line end after the data (or after its
 * CR), or past the last chunk's size line, where the trailer section begins.
 */
export type Phase =
  | "size"
  | "blank"
  | "extension"
  | "size-lf"
  | "data"
  | "data-end"
  | "data-lf"
  | "trailers";

export class ChunkedFraming {
  phase: Phase = "size";
  /** Data bytes left in the current chunk (phase `data`). */
  left = 0;
  /** Chunk-size lines read, the last chunk's included: numbers the chunks in errors. */
  chunks = 0;
  readonly #origin: string;
  #size = 0;
  #digits = 0;
  #lineBytes = 0;

  constructor(origin: string) {
    this.#origin = origin;
  }

  /**
   * Parses framing in `bytes` from `at` until a chunk's data begins (phase `data`), the last
   * chunk's size line ends (phase `trailers`) or `bytes` runs out. Returns where it stopped;
   * throws an "Invalid response" `TypeError` for malformed framing.
   */
  frame(bytes: Uint8Array, at: number): number {
    let i = at;
    for (let phase = this.phase; i < bytes.length; phase = this.phase) {
      if (phase === "data" || phase === "trailers") break;
      if (phase === "extension") {
        i = this.#extension(bytes, i);
      } else if (phase === "data-end" || phase === "data-lf") {
        this.#dataEnd(bytes[i++]!);
      } else {
        this.#sizeLine(bytes[i++]!);
      }
    }
    return i;
  }

  /** Counts `n` data bytes (at most `left`) as copied out. */
  took(n: number): void {
    this.left -= n;
    if (this.left === 0) this.phase = "data-end";
  }

  /** The error for a body that ends here. */
  ended(): TypeError {
    switch (this.phase) {
      case "size":
        return this.#fail(
          this.#lineBytes === 0
            ? "body ended before a chunk-size line"
            : "body ended inside a chunk-size line",
        );
      case "blank":
      case "extension":
      case "size-lf":
        return this.#fail("body ended inside a chunk-size line");
      case "data":
        return this.#fail(`body ended inside chunk ${this.chunks}`);
      case "data-end":
      case "data-lf":
        return this.#fail(`body ended after chunk ${this.chunks}`);
      case "trailers":
        return this.#fail("body ended before the trailer section");
    }
  }

  /** CRLF or a bare LF after the data; anything else means the data was longer. */
  #dataEnd(b: number): void {
    if (b === LF) {
      this.#nextLine();
    } else if (b === CR && this.phase === "data-end") {
      this.phase = "data-lf";
    } else {
      throw this.#fail(`chunk ${this.chunks} is longer than its size`);
    }
  }

  /** One byte of a chunk-size line: `1*13HEXDIG *(SP / HTAB) [";" extensions] [CR] LF`. */
  #sizeLine(b: number): void {
    this.#count(1);
    if (this.phase === "size-lf") {
      if (b !== LF) throw this.#malformed();
      return this.#sizeLineEnd();
    }
    if (this.phase === "size") {
      const digit = hexDigit(b);
      if (digit !== -1) {
        if (++this.#digits > MAX_SIZE_DIGITS) throw this.#malformed();
        this.#size = this.#size * 16 + digit;
        return;
      }
      if (this.#digits === 0) throw this.#malformed();
    }
    // After the digits, in the blanks, or (a CR or LF from #extension) after the extensions.
    if (b === SP || b === HT) {
      this.phase = "blank";
    } else if (b === SEMICOLON) {
      this.phase = "extension";
    } else if (b === CR) {
      this.phase = "size-lf";
    } else if (b === LF) {
      this.#sizeLineEnd();
    } else {
      throw this.#malformed();
    }
  }

  /**
   * Skips extension bytes (anything but CR and LF) in `bytes` from `at` with native searches,
   * never further than one byte past the line's bound, then parses the CR or LF that ends them.
   * Returns where it stopped.
   */
  #extension(bytes: Uint8Array, at: number): number {
    const span = bytes.subarray(at, at + MAX_CHUNK_LINE_BYTES - this.#lineBytes + 1);
    const cr = span.indexOf(CR);
    const lf = span.indexOf(LF);
    const stop = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
    if (stop === -1) {
      this.#count(span.length);
      return at + span.length;
    }
    this.#count(stop);
    this.#sizeLine(span[stop]!);
    return at + stop + 1;
  }

  #sizeLineEnd(): void {
    this.chunks++;
    this.left = this.#size;
    this.phase = this.left === 0 ? "trailers" : "data";
  }

  #nextLine(): void {
    this.phase = "size";
    this.#size = 0;
    this.#digits = 0;
    this.#lineBytes = 0;
  }

  /** Counts `n` bytes of the chunk-size line against its bound. */
  #count(n: number): void {
    this.#lineBytes += n;
    if (this.#lineBytes > MAX_CHUNK_LINE_BYTES) {
      throw this.#fail(`a chunk-size line is longer than ${MAX_CHUNK_LINE_BYTES} bytes`);
    }
  }

  #malformed(): TypeError {
    return this.#fail(`malformed chunk size in chunk ${this.chunks + 1}`);
  }

  #fail(why: string): TypeError {
    return invalid(this.#origin, why);
  }
}

/** The value of an ASCII hex digit, or -1. */
function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const lower = b | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
