/**
 * The factory line's files (CONTRACT.md section 3): the line key it signs with (`--line-key`)
 * and the signed record it keeps (`--record-out`).
 *
 * - The line key is a secret: like ssh with a private key, linkd refuses a key file that group
 *   or others may read or write (BAD_LINE_KEY, exit 65, naming the mode and `chmod 600`). Only
 *   a regular file is opened (a FIFO would block linkd; files.ts), and at most
 *   MAX_LINE_KEY_BYTES + 1 bytes are read.
 * - The record is another device's proof if the path is reused: it is never overwritten. The
 *   CLI checks the path before the device is touched (checkRecordOut: OUTPUT_EXISTS, exit 64,
 *   when something is there; IO, exit 66, when its folder is missing),
 *   and the record is then created without replacing anything and in one piece
 *   (writeRecordOut): a full disk leaves no file (FILE_WRITE, exit 66).
 */
import { dirname } from "../paths.ts";
import { Code, LinkdError } from "../errors.ts";
import { createFileAtomically, readPrivateFile, reasonOf, writeAll } from "../files.ts";

/** Largest line key file read: a seed is 32 bytes raw or 64 hex characters. */
export const MAX_LINE_KEY_BYTES = 4096;

/**
 * The bytes of the line key file at `path` (the caller parses and wipes them). LINE_KEY_MISSING
 * (66) when nothing is there; BAD_LINE_KEY (65) for a file group or others may read or write,
 * a FIFO, socket, device or folder, an unreadable file, or one of more than MAX_LINE_KEY_BYTES.
 */
export function readLineKeyFile(path: string): Uint8Array {
  const bytes = readPrivateFile(
    path,
    MAX_LINE_KEY_BYTES,
    (why, cause) =>
      new LinkdError(Code.BAD_LINE_KEY, `Cannot read line key ${path}: ${why}`, { cause }),
    (mode) =>
      new LinkdError(
        Code.BAD_LINE_KEY,
        `Cannot use line key ${path}: its mode ${mode} lets group or others read or write it; run chmod 600 ${path}`,
      ),
  );
  if (bytes === null) {
    throw new LinkdError(Code.LINE_KEY_MISSING, `Cannot read line key ${path}: file not found`);
  }
  if (bytes.length > MAX_LINE_KEY_BYTES) {
    bytes.fill(0);
    throw new LinkdError(
      Code.BAD_LINE_KEY,
      `Cannot use line key ${path}: the file is more than ${MAX_LINE_KEY_BYTES} bytes; expected a 32-byte Ed25519 seed, raw or as 64 hex characters`,
    );
  }
  return bytes;
}

/**
 * Refuses a `--record-out` path before anything is written: OUTPUT_EXISTS (64) when something
 * is there (a dangling symbolic link too), IO (66) when its folder does not exist.
 */
export function checkRecordOut(path: string): void {
  try {
    Deno.lstatSync(path);
    throw exists(path);
  } catch (e) {
    if (e instanceof LinkdError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new LinkdError(Code.IO, `Cannot write the record to ${path}: ${reasonOf(e)}`);
    }
  }
  let folder = false;
  try {
    folder = Deno.statSync(dirname(path)).isDirectory;
  } catch {
    // reported below
  }
  if (!folder) {
    throw new LinkdError(
      Code.IO,
      `Cannot write the record to ${path}: folder ${dirname(path)} does not exist`,
    );
  }
}

/**
 * Creates the record file at `path` holding `bytes`, in one piece and never over an existing
 * file (OUTPUT_EXISTS, 64); a full disk or an I/O error is FILE_WRITE (66) and leaves nothing.
 */
export function writeRecordOut(path: string, bytes: Uint8Array): void {
  const made = createFileAtomically(
    path,
    (file) => writeAll(file, bytes),
    (why, cause) =>
      new LinkdError(
        Code.FILE_WRITE,
        `Cannot write the record to ${path}: ${why}; nothing was left there: free space, then run linkd provision again`,
        { cause },
      ),
  );
  if (made === "exists") throw exists(path);
}

function exists(path: string): LinkdError {
  return new LinkdError(
    Code.OUTPUT_EXISTS,
    `Cannot write the record to ${path}: it exists already, and a record is never overwritten; pass a new --record-out path`,
  );
}
