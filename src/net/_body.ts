/**
 * The response body, pulled: each `read()` of the caller reads the socket when its buffer is
 * empty (at most `BUFFER_BYTES`), nothing is read ahead. Framed by Content-Length, by chunked
 * coding (RFC 9112 section 7.1: extensions ignored, trailers read and dropped, all lines
 * bounded; the data of every chunk in the buffer comes out as one piece, so tiny chunks cost no
 * more than big ones) or by the server closing. A body cut short fails the read, never ends it
 * quietly; the end, an error and `cancel()` all close the socket.
 *
 * It reads as a `ReadableStream` reader does (`getReader().read()` → `{ done, value }`), without
 * being one: Deno's streams, with `Response` and `Headers`, cost the daemon 2.5 MiB of peak
 * memory over 1000 refreshes (test/bench/memory_bench.ts).
 */
import type { BodyReader, ResponseBody } from "../auth/types.ts";
import { ChunkedFraming } from "./_chunked.ts";
import { type Framing, invalid, MAX_HEADER_LINES } from "./_head.ts";
import { BUFFER_BYTES, LineError, type Reader } from "./_reader.ts";

/** What the body needs of its connection (`Link`). */
export interface BodyLink {
  /** For error messages. */
  readonly origin: string;
  /** Closes the socket; idempotent. */
  close(): void;
  /** Registers the one callback for an early stop (abort): the stream errors with the reason. */
  whenStopped(fn: (reason: unknown) => void): void;
}

/** Gives the next piece of the body, or null at its end. */
type Source = () => Promise<Uint8Array | null>;

/** The body of a response whose head `reader` has read; closes `link` when done. */
export class Http1Body implements ResponseBody, BodyReader {
  readonly #link: BodyLink;
  readonly #next: Source;
  /** Set once: the end (null), or why the body failed or stopped. */
  #outcome: { failure: unknown } | null | undefined = undefined;
  /** The read in progress: reads run one after the other, as a stream's do. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    link: BodyLink,
    reader: Reader,
    framing: Exclude<Framing, { kind: "none" }>,
    maxTrailerBytes: number,
  ) {
    this.#link = link;
    const origin = link.origin;
    this.#next = framing.kind === "length"
      ? lengthSource(reader, framing.length, origin)
      : framing.kind === "chunked"
      ? chunkedSource(reader, maxTrailerBytes, origin)
      : () => reader.bytes(BUFFER_BYTES);
    link.whenStopped((reason) => this.#settle({ failure: reason }));
  }

  /** This body: it has one reader, itself. */
  getReader(): BodyReader {
    return this;
  }

  read(): Promise<{ done: boolean; value?: Uint8Array }> {
    const step = this.#queue.then(() => this.#read());
    this.#queue = step.catch(() => {});
    return step;
  }

  /** Stops reading: the socket is closed, later reads are done. */
  cancel(_reason?: unknown): Promise<void> {
    this.#settle(null);
    return Promise.resolve();
  }

  releaseLock(): void {}

  async #read(): Promise<{ done: boolean; value?: Uint8Array }> {
    const before = this.#state();
    if (before === null) return { done: true };
    if (before) throw before.failure;
    let chunk: Uint8Array | null;
    try {
      chunk = await this.#next();
    } catch (e) {
      this.#settle({ failure: e }); // an abort or a cancel that closed the socket came first
      const why = this.#state();
      if (why === null) return { done: true }; // cancelled while the socket was read
      throw why!.failure;
    }
    const after = this.#state(); // stopped or cancelled while the socket was read?
    if (after === null) return { done: true };
    if (after) throw after.failure;
    if (chunk === null) {
      this.#settle(null);
      return { done: true };
    }
    return { done: false, value: chunk };
  }

  /**
   * The outcome now. An await may have settled it; reading the field directly after a check,
   * TypeScript would keep the type it narrowed to before the await.
   */
  #state(): { failure: unknown } | null | undefined {
    return this.#outcome;
  }

  #settle(outcome: { failure: unknown } | null): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    this.#link.close();
  }
}

function lengthSource(reader: Reader, length: number, origin: string): Source {
  let left = length;
  return async () => {
    if (left === 0) return null;
    const chunk = await reader.bytes(Math.min(left, BUFFER_BYTES));
    if (chunk === null) {
      throw invalid(origin, `body ended after ${length - left} of ${length} bytes`);
    }
    left -= chunk.length;
    return chunk;
  };
}

/**
 * Chunked data, one piece per read: the framing is parsed (across socket reads if need be) up
 * to the first data byte, then the data of every chunk left in the buffer comes out as one
 * array, without waiting for the socket. A framing error found after some data comes at the
 * next read.
 */
function chunkedSource(reader: Reader, maxTrailerBytes: number, origin: string): Source {
  const framing = new ChunkedFraming(origin);
  let failure: unknown;
  let done = false;
  return async () => {
    if (failure !== undefined) throw failure;
    while (framing.phase !== "data" || reader.buffered === 0) {
      if (done) return null;
      if (framing.phase === "trailers") {
        await trailers(reader, maxTrailerBytes, origin);
        done = true;
      } else if (reader.buffered === 0) {
        if (!(await reader.refill())) throw framing.ended();
      } else {
        reader.skip(framing.frame(reader.peek(), 0));
      }
    }
    const bytes = reader.peek();
    const walked = walk(bytes, framing);
    reader.skip(walked.used);
    failure = walked.failure;
    return bytes.slice(0, walked.data);
  };
}

interface Walk {
  /** Bytes of `bytes` parsed. */
  readonly used: number;
  /** Data bytes found, now at the front of `bytes`. */
  readonly data: number;
  /** The framing error that stopped the walk, if one did. */
  readonly failure: unknown;
}

/**
 * Walks the chunks in `bytes` (the reader's buffer) until its end or the last chunk, moving
 * their data to its front, over framing already parsed: one copy for the whole piece, and no
 * array but the one handed out. A framing error ends the walk; the data before it counts.
 */
function walk(bytes: Uint8Array, framing: ChunkedFraming): Walk {
  let i = 0;
  let n = 0;
  try {
    while (i < bytes.length && framing.phase !== "trailers") {
      if (framing.phase === "data") {
        const take = Math.min(framing.left, bytes.length - i);
        moveDown(bytes, i, take, n);
        framing.took(take);
        i += take;
        n += take;
      } else {
        i = framing.frame(bytes, i);
      }
    }
  } catch (e) {
    return { used: i, data: n, failure: e };
  }
  return { used: i, data: n, failure: undefined };
}

/** Moves `n` bytes from `from` to `to` (at most `from`) within `bytes`. */
function moveDown(bytes: Uint8Array, from: number, n: number, to: number): void {
  if (from === to) return;
  if (n > 32) {
    bytes.copyWithin(to, from, from + n);
  } else {
    for (let k = 0; k < n; k++) bytes[to + k] = bytes[from + k]!;
  }
}

/** The trailer section: read, bounded by `maxBytes` and `MAX_HEADER_LINES`, and dropped. */
async function trailers(reader: Reader, maxBytes: number, origin: string): Promise<void> {
  const start = reader.consumed;
  for (let n = 0;; n++) {
    const budget = maxBytes - (reader.consumed - start);
    let text: string | null;
    try {
      text = await reader.line(budget);
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      throw invalid(
        origin,
        e.reason === "long"
          ? `the trailer section is longer than ${maxBytes} bytes`
          : "body ended inside the trailer section",
      );
    }
    if (text === null) throw invalid(origin, "body ended before the trailer section");
    if (text === "") return;
    if (n === MAX_HEADER_LINES) {
      throw invalid(origin, `more than ${MAX_HEADER_LINES} trailer lines`);
    }
  }
}
