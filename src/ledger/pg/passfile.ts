/**
 * The password file libpq reads (`.pgpass`): one `host:port:database:user:password` per line,
 * `*` matching anything in the first four fields, `\` escaping `:` and `\`, `#` starting a
 * comment line; the first matching line wins. As libpq, a file readable by group or others is
 * not used; unlike libpq (which only warns) the client refuses to connect, so a plant notices.
 */
import { readPrivateFile } from "../../files.ts";
import { BAD_AUTHORIZATION, PgError } from "./errors.ts";

/** The file is small by nature: refuse anything bigger than this. */
export const MAX_PASSFILE_BYTES = 64 * 1024;

export interface PassfileKey {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
}

/** The fields of one line, unescaped; null for a comment, a blank or a short line. */
function fields(line: string): string[] | null {
  if (line.startsWith("#") || line.trim() === "") return null;
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "\\" && i + 1 < line.length) cur += line[++i];
    else if (c === ":" && out.length < 4) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.length === 5 ? out : null;
}

/** The password of the first line of `text` that matches `key`, or undefined. */
export function passwordFrom(text: string, key: PassfileKey): string | undefined {
  const want = [key.host, String(key.port), key.database, key.user];
  for (const line of text.split(/\r?\n/)) {
    const f = fields(line);
    if (f === null) continue;
    if (want.every((w, i) => f[i] === "*" || f[i] === w)) return f[4];
  }
  return undefined;
}

/**
 * Reads `path` and looks `key` up; PgError "28000" when the file is not there, is not a regular
 * file (never opened, so a FIFO cannot block), is open to group or others, or is too big.
 */
export function readPassfile(path: string, key: PassfileKey): Promise<string | undefined> {
  const use = (why: string) =>
    new PgError(BAD_AUTHORIZATION, `Cannot use the password file ${path}: ${why}`);
  try {
    const bytes = readPrivateFile(
      path,
      MAX_PASSFILE_BYTES,
      (why, cause) =>
        new PgError(BAD_AUTHORIZATION, `Cannot read the password file ${path}: ${why}`, { cause }),
      () => use("it is readable by group or others; chmod 600 it"),
    );
    if (bytes === null) {
      throw new PgError(BAD_AUTHORIZATION, `Cannot read the password file ${path}: no such file`);
    }
    if (bytes.length > MAX_PASSFILE_BYTES) {
      throw use(`it is bigger than ${MAX_PASSFILE_BYTES} bytes`);
    }
    return Promise.resolve(passwordFrom(new TextDecoder().decode(bytes), key));
  } catch (e) {
    return Promise.reject(e);
  }
}
