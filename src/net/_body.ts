/**
 * The response body as a pull-based stream: each `read()` of the caller reads the socket once
 * (at most `BUFFER_BYTES`), nothing is read ahead. Framed by Content-Length, by chunked coding
 * (RFC 9112 section 7.1: extensions ignored, trailers read and dropped, all lines bounded) or by
 * the server closing. A body cut short errors the stream, never ends it quietly; the end, an
 * error and `cancel()` all close the socket.
 */
import { type Framing, invalid, MAX_HEADER_LINES } from "./_head.ts";
import { BUFFER_BYTES, LineError, type Reader } from "./_reader.ts";

/** Longest chunk-size line, extensions included. */
export const MAX_CHUNK_LINE_BYTES = 4096;

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

/** The body stream of a response whose head `reader` has read; closes `link` when done. */
export function bodyStream(
  link: BodyLink,
  reader: Reader,
  framing: Exclude<Framing, { kind: "none" }>,
  maxTrailerBytes: number,
): ReadableStream<Uint8Array> {
  const origin = link.origin;
  const next: Source = framing.kind === "length"
    ? lengthSource(reader, framing.length, origin)
    : framing.kind === "chunked"
    ? chunkedSource(reader, maxTrailerBytes, origin)
    : () => reader.bytes(BUFFER_BYTES);
  let settled = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      link.whenStopped((reason) => {
        if (settled) return;
        settled = true;
        controller.error(reason);
      });
    },
    async pull(controller) {
      let chunk: Uint8Array | null;
      try {
        chunk = await next();
      } catch (e) {
        if (settled) return;
        settled = true;
        link.close();
        controller.error(e);
        return;
      }
      if (settled) return;
      if (chunk === null) {
        settled = true;
        link.close();
        controller.close();
      } else {
        controller.enqueue(chunk);
      }
    },
    cancel() {
      settled = true;
      link.close();
    },
  }, { highWaterMark: 0 });
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

function chunkedSource(reader: Reader, maxTrailerBytes: number, origin: string): Source {
  let left = 0;
  let chunks = 0;
  let done = false;
  const line = async (limit: number, what: string): Promise<string> => {
    let text: string | null;
    try {
      text = await reader.line(limit);
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      throw invalid(
        origin,
        e.reason === "long" ? `${what} is longer than ${limit} bytes` : `body ended inside ${what}`,
      );
    }
    if (text === null) throw invalid(origin, `body ended before ${what}`);
    return text;
  };
  return async () => {
    while (left === 0) {
      if (done) return null;
      if (chunks > 0) await crlf();
      const size = /^([0-9A-Fa-f]{1,13})[ \t]*(?:;.*)?$/.exec(
        await line(MAX_CHUNK_LINE_BYTES, "a chunk-size line"),
      );
      if (size === null) throw invalid(origin, `malformed chunk size in chunk ${chunks + 1}`);
      chunks++;
      left = parseInt(size[1]!, 16);
      if (left === 0) {
        await trailers();
        done = true;
      }
    }
    const chunk = await reader.bytes(Math.min(left, BUFFER_BYTES));
    if (chunk === null) throw invalid(origin, `body ended inside chunk ${chunks}`);
    left -= chunk.length;
    return chunk;
  };

  /** The line end after a chunk's data: anything else means the data was longer. */
  async function crlf(): Promise<void> {
    let text: string | null;
    try {
      text = await reader.line(2);
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      if (e.reason === "eof") throw invalid(origin, `body ended after chunk ${chunks}`);
      text = "?"; // more than a line end: the data went on past the size
    }
    if (text === null) throw invalid(origin, `body ended after chunk ${chunks}`);
    if (text !== "") throw invalid(origin, `chunk ${chunks} is longer than its size`);
  }

  async function trailers(): Promise<void> {
    const start = reader.consumed;
    for (let n = 0;; n++) {
      const budget = maxTrailerBytes - (reader.consumed - start);
      if ((await line(budget, "the trailer section")) === "") return;
      if (n === MAX_HEADER_LINES) {
        throw invalid(origin, `more than ${MAX_HEADER_LINES} trailer lines`);
      }
    }
  }
}
