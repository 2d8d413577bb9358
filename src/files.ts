/**
 * The files linkd reads and writes (config, bus password, OTP, line key, flash, --record-out),
 * opened so that nothing a file system holds can hang linkd or leave half a file behind.
 *
 * Reading: a path is checked with stat() before it is opened, and only a regular file is opened.
 * open(2) of a FIFO blocks until a writer comes, and a synchronous open blocks the one JavaScript
 * thread, signal handlers included (`linkd run` then ignored SIGTERM); a socket or a device may
 * block or never end. Deno cannot open with O_NONBLOCK, so the check comes first, and fstat() of
 * the opened file confirms that it is the same regular file (device and inode) that was checked.
 * The window between the two (someone with write access to the folder swapping the file for a
 * FIFO at that instant) is the one left; that person could as well replace the file's content.
 * Every read is bounded: linkd never reads more than it can use, plus one byte to tell that
 * there was more.
 *
 * Writing a new file (`createFileAtomically`): a temporary file in the same folder is written,
 * synced, and linked into place with link(2), which never replaces an existing name; then the
 * temporary name goes and the folder is synced. A full disk or an I/O error on the way removes
 * the temporary file: nothing partial is ever seen at the final name, even after a power cut.
 *
 * The helpers know no error codes: callers pass `fail`, which turns a reason ("it is a FIFO, not
 * a regular file", "no space left on the device") into their own coded error.
 */

/**
 * Makes the caller's coded error from a reason (a lower-case phrase, no full stop). `cause` is
 * the system's error; it is absent when the path itself is wrong (not a regular file, replaced
 * while being opened), so a caller can tell bad input from a failing system.
 */
export type Fail = (why: string, cause?: unknown) => Error;

/** What a path that is not a regular file names, for messages ("a FIFO"). */
export function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a FIFO";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSymlink) return "a symbolic link";
  return info.isFile ? "a regular file" : "not a regular file";
}

/** A reason for a failed file operation, for messages: never more than a short phrase. */
export function reasonOf(e: unknown): string {
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "it is a folder, not a regular file";
  if (e instanceof Deno.errors.NotFound) return "file not found";
  const code = (e as { code?: unknown } | null)?.code;
  if (code === "ENOSPC") return "no space left on the device (ENOSPC)";
  if (code === "EDQUOT") return "disk quota exceeded (EDQUOT)";
  if (code === "EROFS") return "read-only file system (EROFS)";
  if (code === "EIO") return "input/output error (EIO)";
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return `error ${code}`;
  return e instanceof Error ? e.name : "unknown error";
}

/**
 * Reads from `file` until its end or until `max` bytes are read, whichever comes first. The
 * result is a view of one buffer; nothing else holds the bytes read, so wiping it wipes them.
 */
export function readAtMost(file: Deno.FsFile, max: number): Uint8Array {
  const buf = new Uint8Array(max);
  let n = 0;
  while (n < max) {
    const got = file.readSync(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return buf.subarray(0, n);
}

/** The reason a path of this kind cannot be opened where a regular file belongs, or null. */
function notRegular(info: Deno.FileInfo): string | null {
  return info.isFile ? null : `it is ${kindOf(info)}, not a regular file`;
}

/**
 * Opens the regular file at `path` for reading (and writing with `write`; symbolic links
 * followed, nothing created), or returns null when nothing is there. A folder, FIFO, socket or
 * device there is `fail(reason)` and is never opened, so it cannot block; so is a failure to
 * open, and a file that is not the one stat() saw. `info` is the opened file's fstat().
 */
export function openRegularFile(
  path: string,
  fail: Fail,
  options: { write?: boolean } = {},
): { file: Deno.FsFile; info: Deno.FileInfo } | null {
  let before: Deno.FileInfo;
  try {
    before = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw fail(reasonOf(e), e);
  }
  const wrong = notRegular(before);
  if (wrong !== null) throw fail(wrong);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write: options.write ?? false });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null; // removed since: as if never there
    throw fail(reasonOf(e), e);
  }
  let info: Deno.FileInfo;
  try {
    info = file.statSync();
  } catch (e) {
    file.close();
    throw fail(reasonOf(e), e);
  }
  const changed = notRegular(info) ??
    (info.dev !== before.dev || info.ino !== before.ino
      ? "it was replaced while being opened"
      : null);
  if (changed !== null) {
    file.close();
    throw fail(changed);
  }
  return { file, info };
}

/**
 * Reads at most `max` bytes of the regular file at `path` (see openRegularFile and readAtMost),
 * or returns null when nothing is there. A read error is `fail(reason)`.
 */
export function readRegularFile(path: string, max: number, fail: Fail): Uint8Array | null {
  const opened = openRegularFile(path, fail);
  if (opened === null) return null;
  try {
    return readAtMost(opened.file, max);
  } catch (e) {
    throw fail(reasonOf(e), e);
  } finally {
    opened.file.close();
  }
}

/**
 * A private file (the line key, an HSM PIN, a PostgreSQL password file): as readRegularFile,
 * and refused with `badMode(mode)` (the mode as 4 octal digits) before it is read when group or
 * others may read or write it, as ssh refuses a private key. The caller refuses more than `max`
 * bytes (at most `max` + 1 are read) and wipes what it got.
 */
export function readPrivateFile(
  path: string,
  max: number,
  fail: Fail,
  badMode: (mode: string) => Error,
): Uint8Array | null {
  const opened = openRegularFile(path, fail);
  if (opened === null) return null;
  try {
    const mode = (opened.info.mode ?? 0) & 0o777;
    if ((mode & 0o077) !== 0) throw badMode(mode.toString(8).padStart(4, "0"));
    try {
      return readAtMost(opened.file, max + 1);
    } catch (e) {
      throw fail(reasonOf(e), e);
    }
  } finally {
    opened.file.close();
  }
}

/** Folder and file name of `path` ("." for a bare name). */
function split(path: string): { folder: string; name: string } {
  const at = path.lastIndexOf("/");
  if (at < 0) return { folder: ".", name: path };
  return { folder: at === 0 ? "/" : path.slice(0, at), name: path.slice(at + 1) };
}

/** Syncs the folder `folder`, so that a new name in it survives a power cut (best effort). */
export function syncFolder(folder: string): void {
  try {
    const dir = Deno.openSync(folder, { read: true });
    try {
      dir.syncSync();
    } finally {
      dir.close();
    }
  } catch {
    // not every file system lets a folder be synced; the file's own data is synced already
  }
}

export interface CreateOptions {
  /** Permission bits of the new file (before the umask); default 0o666. */
  readonly mode?: number;
  /** link(2), injected by tests. */
  readonly link?: (from: string, to: string) => void;
}

/**
 * Creates the file at `path` with what `fill` writes into it, never replacing a file that
 * exists: "exists" when something is at `path` already (nothing was written there), "created"
 * once the whole file is in place and synced. Any failure on the way (a full disk, an I/O
 * error, `fill` throwing) is `fail(reason)` and leaves nothing behind, neither at `path` nor a
 * temporary file. A file system without hard links (vfat) gets the file written in place
 * instead, created exclusively and removed again on failure.
 */
export function createFileAtomically(
  path: string,
  fill: (file: Deno.FsFile) => void,
  fail: Fail,
  options: CreateOptions = {},
): "created" | "exists" {
  const { folder, name } = split(path);
  const mode = options.mode ?? 0o666;
  const link = options.link ?? Deno.linkSync;
  const suffix = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  const tmp = `${folder}/.${name}.tmp-${Deno.pid}-${suffix}`;
  try {
    writeNew(tmp, fill, mode);
  } catch (e) {
    remove(tmp);
    throw fail(reasonOf(e), e);
  }
  try {
    link(tmp, path);
  } catch (e) {
    remove(tmp);
    if (e instanceof Deno.errors.AlreadyExists) return "exists";
    if (!noHardLinks(e)) throw fail(reasonOf(e), e);
    // A file system without hard links: write in place, exclusively, and clean up on failure.
    const made = { created: false };
    try {
      writeNew(path, fill, mode, made);
    } catch (e2) {
      if (e2 instanceof Deno.errors.AlreadyExists) return "exists";
      if (made.created) remove(path);
      throw fail(reasonOf(e2), e2);
    }
    syncFolder(folder);
    return "created";
  }
  remove(tmp);
  syncFolder(folder);
  return "created";
}

/** link(2) refused because the file system has no hard links (vfat: EPERM; others ENOTSUP). */
function noHardLinks(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Deno.errors.PermissionDenied || code === "ENOTSUP" ||
    code === "EOPNOTSUPP" || e instanceof Deno.errors.NotSupported;
}

/** Creates `path` exclusively, fills it, syncs it; AlreadyExists when `path` exists. */
function writeNew(
  path: string,
  fill: (file: Deno.FsFile) => void,
  mode: number,
  made = { created: false },
): void {
  const file = Deno.openSync(path, { write: true, createNew: true, mode });
  made.created = true;
  try {
    fill(file);
    file.syncSync();
  } finally {
    file.close();
  }
}

/** Removes `path` if it is there; never throws (it only cleans up after a failure). */
function remove(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // nothing there, or nothing more to be done
  }
}

/** Writes all of `bytes` to `file` (writeSync may write less than asked). */
export function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}
