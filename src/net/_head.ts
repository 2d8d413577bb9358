/**
 * The response head (RFC 9112 sections 4 and 5): the status line and the header fields, bounded,
 * after any 1xx interim responses; and how the body is framed (section 6.3). Error messages name
 * what was wrong and never quote the server's bytes (a hostile server could echo the request).
 */
import { LineError, type Reader } from "./_reader.ts";

/** Most header lines in one head. */
export const MAX_HEADER_LINES = 100;
/** Most 1xx interim responses skipped before the final one. */
export const MAX_INTERIM_RESPONSES = 8;

export interface Head {
  readonly version: "1.0" | "1.1";
  readonly status: number;
  readonly statusText: string;
  /** Names as sent, values without surrounding whitespace, in order. */
  readonly fields: ReadonlyArray<readonly [string, string]>;
}

export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: (.*))?$/;
const REASON = /^[\t\x20-\x7e\x80-\xff]*$/;
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters a field value must not hold (HTAB is allowed). */
// deno-lint-ignore no-control-regex
const FIELD_CTL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** A `TypeError` for a response that breaks HTTP/1.1. */
export function invalid(origin: string, why: string): TypeError {
  return new TypeError(`Invalid response from ${origin}: ${why}`);
}

/**
 * Reads heads until a final one (status 200 or more, or 101), skipping at most
 * `MAX_INTERIM_RESPONSES` 1xx responses. Each head, status line and blank line included, is at
 * most `maxBytes` bytes and `MAX_HEADER_LINES` header lines.
 */
export async function readHead(reader: Reader, maxBytes: number, origin: string): Promise<Head> {
  for (let interim = 0;; interim++) {
    const head = await readOneHead(reader, maxBytes, origin, interim === 0);
    if (head.status >= 200 || head.status === 101) return head;
    if (interim === MAX_INTERIM_RESPONSES) {
      throw invalid(origin, `more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`);
    }
  }
}

async function readOneHead(
  reader: Reader,
  maxBytes: number,
  origin: string,
  first: boolean,
): Promise<Head> {
  const start = reader.consumed;
  const line = async (what: string): Promise<string | null> => {
    try {
      return await reader.line(maxBytes - (reader.consumed - start));
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      throw invalid(
        origin,
        e.reason === "long"
          ? `header section is larger than ${maxBytes} bytes`
          : `connection closed inside the ${what}`,
      );
    }
  };

  const statusLine = await line("status line");
  if (statusLine === null) {
    throw invalid(
      origin,
      first ? "connection closed before any response" : "connection closed after a 1xx response",
    );
  }
  const m = STATUS_LINE.exec(statusLine);
  if (m === null) throw invalid(origin, "malformed status line");
  const version = `${m[1]}.${m[2]}`;
  if (version !== "1.0" && version !== "1.1") {
    throw invalid(origin, `unsupported HTTP version ${version}`);
  }
  const reason = m[4] ?? "";
  if (!REASON.test(reason)) throw invalid(origin, "invalid character in the status line");

  const fields: Array<readonly [string, string]> = [];
  for (;;) {
    const field = await line("header section");
    if (field === null) throw invalid(origin, "connection closed inside the header section");
    if (field === "") break;
    if (fields.length === MAX_HEADER_LINES) {
      throw invalid(origin, `more than ${MAX_HEADER_LINES} header lines`);
    }
    const n = fields.length + 1;
    if (field[0] === " " || field[0] === "\t") {
      throw invalid(origin, `header line ${n} is folded (obs-fold)`);
    }
    const colon = field.indexOf(":");
    const name = colon > 0 ? field.slice(0, colon) : "";
    if (!TOKEN.test(name)) throw invalid(origin, `header line ${n} has no valid field name`);
    const value = field.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (FIELD_CTL.test(value)) {
      throw invalid(origin, `header line ${n} has a control character in its value`);
    }
    fields.push([name, value]);
  }
  return {
    version,
    status: Number(m[3]),
    statusText: reason,
    fields,
  };
}

/** The Content-Length the head declares (one value, however often repeated), or null. */
export function contentLength(head: Head, origin: string): number | null {
  let length: string | null = null;
  for (const [name, value] of head.fields) {
    if (name.toLowerCase() !== "content-length") continue;
    for (const part of value.split(",")) {
      const v = part.trim();
      if (!/^\d{1,15}$/.test(v)) throw invalid(origin, "malformed Content-Length");
      const canonical = String(Number(v));
      if (length !== null && length !== canonical) {
        throw invalid(origin, "conflicting Content-Length values");
      }
      length = canonical;
    }
  }
  return length === null ? null : Number(length);
}

/**
 * How the body is delimited (RFC 9112 section 6.3): none for HEAD, 204, 205 and 304; chunked;
 * Content-Length; else until the server closes. Refused: Content-Length with Transfer-Encoding,
 * Transfer-Encoding in an HTTP/1.0 response, and any transfer coding but a lone `chunked`.
 */
export function framing(head: Head, method: string, origin: string): Framing {
  const length = contentLength(head, origin);
  const codings: string[] = [];
  for (const [name, value] of head.fields) {
    if (name.toLowerCase() !== "transfer-encoding") continue;
    for (const c of value.split(",")) codings.push(c.trim().toLowerCase());
  }
  if (codings.length > 0) {
    if (length !== null) {
      throw invalid(origin, "both Content-Length and Transfer-Encoding");
    }
    if (head.version === "1.0") throw invalid(origin, "Transfer-Encoding in an HTTP/1.0 response");
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw invalid(origin, "unsupported Transfer-Encoding (only chunked is accepted)");
    }
  }
  if (method === "HEAD" || [204, 205, 304].includes(head.status)) return { kind: "none" };
  if (codings.length > 0) return { kind: "chunked" };
  if (length !== null) return { kind: "length", length };
  return { kind: "close" };
}
