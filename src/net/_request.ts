/**
 * Turns `fetch`'s arguments into the bytes of one HTTP/1.1 request, refusing with a `TypeError`
 * coded `ERR_INVALID_ARG_VALUE` (../text.ts; before any connection) whatever could smuggle a second request or a header: a CR, LF or NUL
 * in the URL, method, header names or values; a URL with credentials or another scheme; a body
 * type it cannot size. Messages never quote a header value or the body.
 */
import { hasControl, invalidArgument } from "../text.ts";
import type { ServerAddress } from "./_link.ts";
import { TOKEN } from "./_head.ts";

export interface Prepared extends ServerAddress {
  /** Upper case for the standard methods, as `fetch` normalizes them. */
  readonly method: string;
  /** The request head and body, ready to write. */
  readonly message: Uint8Array;
  readonly signal: AbortSignal | undefined;
}

/**
 * Request headers the client sets itself (framing, connection, encoding): a caller's value is
 * dropped, as `fetch` drops forbidden request headers.
 */
const OWN_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "accept-encoding",
]);
const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const CR_LF_NUL = /[\r\n\0]/;
const encoder = new TextEncoder();

/** Reads the URL, method, headers, body and signal from `input` and `init`, as `fetch` does. */
export async function prepare(
  input: string | URL | Request,
  init: RequestInit | undefined,
  userAgent: string,
): Promise<Prepared> {
  // A string or URL never touches `Request` (nor the daemon's path Deno's fetch classes).
  const request = typeof input === "string" || input instanceof URL
    ? undefined
    : input instanceof Request
    ? input
    : undefined;
  const url = parseUrl(request ? request.url : input instanceof URL ? input.href : String(input));
  const tls = url.protocol === "https:";

  const method = checkMethod(init?.method ?? request?.method ?? "GET");
  const headers = headerList(init?.headers !== undefined ? init.headers : request?.headers);

  let body: Uint8Array | null;
  let type: string | null = null;
  if (init?.body !== undefined) {
    [body, type] = await bodyBytes(init.body);
  } else if (request !== undefined && request.body !== null) {
    body = new Uint8Array(await request.arrayBuffer());
  } else {
    body = null;
  }
  if (body !== null && (method === "GET" || method === "HEAD")) {
    throw invalidArgument(`Request with ${method} method cannot have a body`);
  }

  const target = url.pathname + url.search;
  if (!/^[\x21-\x7e]+$/.test(target) || !/^[\x21-\x7e]+$/.test(url.host)) {
    throw invalidArgument("Request URL has characters that cannot be sent");
  }
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${url.host}`];
  let hasType = false;
  let hasAgent = false;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (OWN_HEADERS.has(lower)) continue;
    hasType ||= lower === "content-type";
    hasAgent ||= lower === "user-agent";
    lines.push(`${name}: ${value}`);
  }
  if (type !== null && !hasType) lines.push(`Content-Type: ${type}`);
  if (body !== null) lines.push(`Content-Length: ${body.length}`);
  else if (method === "POST" || method === "PUT") lines.push("Content-Length: 0");
  lines.push("Connection: close", "Accept-Encoding: identity");
  if (!hasAgent) lines.push(`User-Agent: ${userAgent}`);
  const head = lines.join("\r\n") + "\r\n\r\n";

  const message = new Uint8Array(head.length + (body?.length ?? 0));
  for (let i = 0; i < head.length; i++) message[i] = head.charCodeAt(i);
  if (body !== null) message.set(body, head.length);

  const signal = init?.signal !== undefined ? init.signal : request?.signal;
  return {
    origin: url.origin,
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port === "" ? (tls ? 443 : 80) : Number(url.port),
    tls,
    method,
    message,
    signal: signal ?? undefined,
  };
}

function parseUrl(raw: string): URL {
  // The URL parser would silently drop a tab, CR or LF: refuse them instead.
  if (hasControl(raw)) throw invalidArgument("Request URL has a control character");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidArgument("Request URL is not a valid absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidArgument(`Request URL scheme must be http or https, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw invalidArgument("Request URL must not include credentials");
  }
  if (url.hostname === "") throw invalidArgument("Request URL has no host");
  return url;
}

function checkMethod(raw: string): string {
  if (!TOKEN.test(raw)) throw invalidArgument("Request method is not a valid HTTP token");
  const upper = raw.toUpperCase();
  if (FORBIDDEN_METHODS.has(upper)) throw invalidArgument(`Request method ${upper} is forbidden`);
  return NORMALIZED_METHODS.has(upper) ? upper : raw;
}

/** The caller's headers as [name, value] pairs, checked; values trimmed as `Headers` does. */
function headerList(init: HeadersInit | undefined): Array<[string, string]> {
  if (init === undefined) return [];
  let pairs: Array<[string, string]>;
  if (Array.isArray(init)) {
    pairs = init.map((pair) => {
      if (pair.length !== 2) throw invalidArgument("Request header pair must have two items");
      return [String(pair[0]), String(pair[1])];
    });
  } else if (isPlainRecord(init)) {
    pairs = Object.entries(init).map(([k, v]) => [k, String(v)]);
  } else {
    pairs = [...(init as Headers)]; // a Headers (only its holder made one)
  }
  return pairs.map(([name, value]) => {
    if (!TOKEN.test(name)) throw invalidArgument("Request header name is not a valid HTTP token");
    if (CR_LF_NUL.test(value)) {
      throw invalidArgument(`Request header ${name} has a CR, LF or NUL in its value`);
    }
    // deno-lint-ignore no-control-regex
    if (/[^\x00-\xff]/.test(value)) {
      throw invalidArgument(`Request header ${name} has a character above U+00FF in its value`);
    }
    return [name, value.replace(/^[ \t]+|[ \t]+$/g, "")];
  });
}

function isPlainRecord(v: object): v is Record<string, string> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The body's bytes and the Content-Type `fetch` would give it (null: none). */
async function bodyBytes(
  body: BodyInit | null,
): Promise<[Uint8Array | null, string | null]> {
  if (body === null) return [null, null];
  if (typeof body === "string") return [encoder.encode(body), "text/plain;charset=UTF-8"];
  if (body instanceof URLSearchParams) {
    return [encoder.encode(body.toString()), "application/x-www-form-urlencoded;charset=UTF-8"];
  }
  if (body instanceof ArrayBuffer) return [new Uint8Array(body), null];
  if (ArrayBuffer.isView(body)) {
    return [new Uint8Array(body.buffer, body.byteOffset, body.byteLength), null];
  }
  if (body instanceof Blob) {
    return [new Uint8Array(await body.arrayBuffer()), body.type === "" ? null : body.type];
  }
  throw invalidArgument(
    "Request body must be a string, bytes, URLSearchParams or a Blob (streams and forms are not supported)",
  );
}
