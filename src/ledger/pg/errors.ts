/**
 * The one error class of the PostgreSQL client. Everything the server or the network did is a
 * `PgError` whose `code` is a SQLSTATE: the server's own for an ErrorResponse ("23505" unique
 * violation, "28P01" wrong password), and for the client's findings the codes libpq and the
 * server use for the same things (constants below). A caller's mistake (a bad URL, a parameter
 * that cannot be sent) is a `TypeError` with code `ERR_INVALID_ARG_VALUE` (../../text.ts).
 *
 * No message holds a password or a URL with one: the client names the server as `host:port`,
 * and `redact` blanks the password wherever a server's text might echo it.
 */
import { oneLine } from "../../text.ts";

/** Cannot connect: refused, no route, name not found, connect timeout. */
export const CANNOT_CONNECT = "08001";
/** The connection was closed (`close()` called, or broken before): nothing was sent. */
export const NO_CONNECTION = "08003";
/** The server closed the connection, sent what breaks the protocol, or did not answer in time. */
export const CONNECTION_FAILURE = "08006";
/** The caller's signal aborted the operation. */
export const CANCELED = "57014";
/** A result or message bigger than the client's bounds. */
export const TOO_LARGE = "54000";
/** What the client does not do: an authentication method, TLS refused by the server. */
export const NOT_SUPPORTED = "0A000";
/** Authentication the client refuses: a server whose SCRAM proof is wrong, a readable passfile. */
export const BAD_AUTHORIZATION = "28000";

export class PgError extends Error {
  /** The SQLSTATE (five characters). */
  readonly code: string;
  /** The server's DETAIL field, when it sent one. */
  detail?: string;
  /** The server's severity (ERROR, FATAL, PANIC), for an ErrorResponse. */
  severity?: string;
  /** The constraint the server named (e.g. for "23505"). */
  constraint?: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PgError";
    this.code = code;
  }
}

/** `text` with every occurrence of each non-empty secret replaced by `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join("***");
  return out;
}

/**
 * The PgError for an ErrorResponse's `fields`: its SQLSTATE ("XX000" when it sent none), its
 * message after `action` ("Cannot run the query: duplicate key value ..."), its detail,
 * severity and constraint; each text made one line, cut at 500 characters, secrets redacted.
 */
export function serverError(
  fields: ReadonlyMap<string, string>,
  action: string,
  secrets: readonly string[],
): PgError {
  const clean = (s: string) => oneLine(redact(s, secrets), 500);
  const code = fields.get("C") ?? "";
  const e = new PgError(
    /^[0-9A-Z]{5}$/.test(code) ? code : "XX000",
    `Cannot ${action}: ${clean(fields.get("M") ?? "the server gave no message")}`,
  );
  const detail = fields.get("D");
  if (detail !== undefined) e.detail = clean(detail);
  const severity = fields.get("V") ?? fields.get("S");
  if (severity !== undefined) e.severity = clean(severity);
  const constraint = fields.get("n");
  if (constraint !== undefined) e.constraint = clean(constraint);
  return e;
}
