/**
 * The connection URL, libpq's form reduced to what linkd needs:
 *
 *   postgres[ql]://user[:password]@host[:port]/dbname[?sslmode=disable|require|verify-full
 *     &connect_timeout=S&passfile=PATH&sslrootcert=PATH&application_name=NAME]
 *
 * Every part is percent-decoded; the host is an IPv4 address, a name or a bracketed IPv6
 * address; the port defaults to 5432 and the database to the user. sslmode defaults to
 * `disable`; `require` and `verify-full` both mean TLS with the certificate and host name checked
 * (Deno cannot skip the check, so `require` is stricter than libpq's). An unknown parameter is
 * refused, as libpq refuses it. Errors name the part that is wrong and never echo the URL.
 */
import { invalidArgument } from "../../text.ts";

export interface PgTarget {
  readonly user: string;
  /** Undefined when the URL has none (then the passfile may give one). */
  readonly password: string | undefined;
  /** Without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly tls: boolean;
  /** Seconds, from `connect_timeout`; undefined when absent (or 0, libpq's "forever"). */
  readonly connectTimeoutS: number | undefined;
  readonly passfile: string | undefined;
  readonly sslrootcert: string | undefined;
  readonly applicationName: string | undefined;
}

const PARAMS = new Set([
  "sslmode",
  "connect_timeout",
  "passfile",
  "sslrootcert",
  "application_name",
]);

function decode(s: string, part: string): string {
  try {
    const v = decodeURIComponent(s);
    if (v.includes("\0")) throw new Error("NUL");
    return v;
  } catch {
    throw invalidArgument(
      `Cannot use the PostgreSQL URL: its ${part} is not valid percent-encoding`,
    );
  }
}

/** `url` read, or a TypeError (`ERR_INVALID_ARG_VALUE`) naming the part that is wrong. */
export function parsePgUrl(url: string): PgTarget {
  const bad = (why: string) => invalidArgument(`Cannot use the PostgreSQL URL: ${why}`);
  const m = /^(postgres|postgresql):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (m === null) {
    throw bad("it must look like postgres://user:password@host:port/dbname");
  }
  const authority = m[2] ?? "";
  const path = m[3] ?? "";
  const at = authority.lastIndexOf("@");
  if (at < 0) throw bad("it names no user; write postgres://user@host/dbname");
  const userinfo = authority.slice(0, at);
  const hostport = authority.slice(at + 1);
  const colon = userinfo.indexOf(":");
  const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), "user");
  const password = colon < 0 ? undefined : decode(userinfo.slice(colon + 1), "password");
  if (user === "") throw bad("its user is empty");

  const hm = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::([0-9]{1,5}))?$/.exec(hostport);
  if (hm === null) throw bad("its host must be a name, an IPv4 address or [IPv6], then :port");
  const host = hm[1] ?? decode(hm[2] ?? "", "host");
  if (hm[1] === undefined && !/^[A-Za-z0-9._-]+$/.test(host)) {
    throw bad("its host must be a name, an IPv4 address or [IPv6], then :port");
  }
  const port = hm[3] === undefined ? 5432 : Number(hm[3]);
  if (!(port >= 1 && port <= 65535)) throw bad("its port must be between 1 and 65535");

  if (path !== "" && !path.startsWith("/")) throw bad("its database must follow a /");
  const database = path.length > 1 ? decode(path.slice(1), "database") : user;
  if (database.includes("/")) throw bad("its database name must not hold a /");

  const seen = new Map<string, string>();
  for (const pair of (m[4] ?? "").split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const key = decode(eq < 0 ? pair : pair.slice(0, eq), "parameter name");
    const value = decode(eq < 0 ? "" : pair.slice(eq + 1).replaceAll("+", " "), `${key} value`);
    if (!PARAMS.has(key)) throw bad(`parameter ${JSON.stringify(key)} is not supported`);
    seen.set(key, value);
  }
  const sslmode = seen.get("sslmode") ?? "disable";
  if (!["disable", "require", "verify-full"].includes(sslmode)) {
    throw bad("sslmode must be disable, require or verify-full");
  }
  let connectTimeoutS: number | undefined;
  const ct = seen.get("connect_timeout");
  if (ct !== undefined) {
    if (!/^[0-9]{1,6}$/.test(ct)) throw bad("connect_timeout must be a whole number of seconds");
    connectTimeoutS = Number(ct) === 0 ? undefined : Math.max(2, Number(ct)); // libpq's minimum
  }
  return {
    user,
    password,
    host,
    port,
    database,
    tls: sslmode !== "disable",
    connectTimeoutS,
    passfile: seen.get("passfile") || undefined,
    sslrootcert: seen.get("sslrootcert") || undefined,
    applicationName: seen.get("application_name") || undefined,
  };
}
