/**
 * A small HTTP/1.1 client with `fetch`'s shape, for linkd's token requests: each request is
 * written by hand over `Deno.connect` (and `Deno.startTls` for https), one request per
 * connection (`Connection: close`, no pool): a speaker refreshes a token about once an hour.
 * Through `postForm`, 1000 requests raise peak RSS about 12 MB less than with Deno's `fetch`
 * (measured on Deno 2.9.6); most of what remains is V8 compiling hot code, not this client.
 *
 * Unlike `fetch`, it never follows a redirect and returns the real 3xx status and headers
 * (whatever `init.redirect` says): an OAuth endpoint must not be redirected. It does not
 * decompress (it sends `Accept-Encoding: identity`), pool or cache. Its answer is its own
 * `Http1Response` (src/net/_response.ts), read as a `Response` is but without Deno's `Response`,
 * `Headers` and streams: 2.5 MiB less peak memory over 1000 refreshes.
 */
import { hasControl, invalidArgument } from "../text.ts";
import { Http1Body } from "./_body.ts";
import { Http1Headers, Http1Response } from "./_response.ts";
import { contentLength, framing, type Head, invalid, readHead } from "./_head.ts";
import { Link } from "./_link.ts";
import { prepare } from "./_request.ts";
import { Reader } from "./_reader.ts";

export type { Fetch } from "../auth/types.ts";
export { Http1Headers, Http1Response } from "./_response.ts";

/** `fetch`'s shape, answering with an `Http1Response`: a `Fetch` (src/auth/types.ts). */
export type Http1Fetch = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Http1Response>;

export interface Http1Options {
  /** PEM certificates trusted for https in addition to Deno's own root store. */
  readonly caCerts?: string[];
  /**
   * Bound on a response head (status line, headers, blank line), in bytes, and on the trailer
   * section of a chunked body: default 16 KiB.
   */
  readonly maxHeaderBytes?: number;
  /** Time to connect, TLS handshake included, in milliseconds: default 30 000. */
  readonly connectTimeoutMs?: number;
  /** The `User-Agent` sent when the caller sets none: default `linkd`. */
  readonly userAgent?: string;
}

export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * A `fetch` over HTTP/1.1 (`http:` and `https:` only). It resolves when the response head has
 * arrived, with an `Http1Response` whose body reads the socket as the caller reads it; the
 * caller must read the body to its end or `cancel()` it, which closes the socket.
 *
 * Rejects, as `fetch` does:
 * - with a `TypeError` for a bad request (URL, scheme, credentials, CR/LF/NUL in the method,
 *   URL or a header; a body with GET or HEAD; an unsupported body type), before connecting;
 * - with a `TypeError` whose `cause` is Deno's error when connecting, TLS, writing or reading
 *   fails; with a `TypeError` "Invalid response from ORIGIN: WHY" for a response that breaks
 *   HTTP/1.1 (a body read fails the same way, e.g. when the server closes it early);
 * - with `signal.reason` when the signal aborts, at any step (a body read fails with it too)
 *   and the socket is closed at once (during a TLS handshake Deno keeps the TCP socket
 *   until the server answers or closes, see `Link.connect`);
 * - with a `DOMException` `TimeoutError` when connecting takes longer than `connectTimeoutMs`.
 *
 * Options are checked at once: a `TypeError` for a bad one.
 */
export function createHttp1Fetch(options: Http1Options = {}): Http1Fetch {
  const caCerts = options.caCerts === undefined ? undefined : [...options.caCerts];
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const userAgent = options.userAgent ?? "linkd";
  if (!(Number.isSafeInteger(maxHeaderBytes) && maxHeaderBytes >= 64)) {
    throw invalidArgument(
      `maxHeaderBytes must be an integer of at least 64, got ${maxHeaderBytes}`,
    );
  }
  if (!(connectTimeoutMs > 0)) {
    throw invalidArgument(`connectTimeoutMs must be a positive number, got ${connectTimeoutMs}`);
  }
  if (userAgent === "" || hasControl(userAgent) || /[^\x20-\xff]/.test(userAgent)) {
    throw invalidArgument("userAgent must be a non-empty header value without control characters");
  }

  return async (input, init) => {
    const req = await prepare(input, init, userAgent);
    const { signal } = req;
    if (signal?.aborted) throw signal.reason;
    const link = new Link(req.origin, signal);
    try {
      await link.connect(req, caCerts, connectTimeoutMs);
      await link.write(req.message);
      const reader = new Reader(link.read);
      const head = await readHead(reader, maxHeaderBytes, req.origin);
      return respond(head, req.method, link, reader, maxHeaderBytes);
    } catch (e) {
      link.close();
      throw e;
    }
  };
}

/** `createHttp1Fetch()` with the defaults. */
export const http1Fetch: Http1Fetch = createHttp1Fetch();

function respond(
  head: Head,
  method: string,
  link: Link,
  reader: Reader,
  maxHeaderBytes: number,
): Http1Response {
  const { origin } = link;
  if (head.status === 101) throw invalid(origin, "unexpected 101 Switching Protocols");
  if (head.status > 599) throw invalid(origin, `status ${head.status} is out of range`);
  const frame = framing(head, method, origin);
  const length = contentLength(head, origin);
  // One Content-Length even when it came repeated (contentLength() checked they agree).
  const fields = head.fields.filter(([name]) => name.toLowerCase() !== "content-length");
  const headers = new Http1Headers(
    length === null ? fields : [...fields, ["content-length", String(length)]],
  );
  const answer = (body: Http1Body | null) =>
    new Http1Response(head.status, head.statusText, headers, body);
  if (frame.kind === "none" || (frame.kind === "length" && frame.length === 0)) {
    link.close(); // nothing to read: do not wait for the caller to ask
    return answer(null);
  }
  return answer(new Http1Body(link, reader, frame, maxHeaderBytes));
}
