/**
 * The one-time-programmable key store (`keys.otpPath`, CONTRACT.md section 2), emulated by a
 * regular file. A missing or empty file is a blank part; `program` writes the root key once and
 * the part then refuses every further write, like an eFuse block.
 *
 * File format (OTP_FILE_BYTES = 44 bytes):
 *
 *     offset  size  field
 *     0       4     magic "LKO1"
 *     4       32    root key
 *     36      8     check: SHA-512("LKO1" || root key), first 8 bytes
 *
 * The check makes a damaged file OTP_CORRUPT instead of a silently wrong key (which would make
 * every sealed record fail to open with SEAL_AUTH, far from the cause). It is an integrity
 * check, not a secret: the file holds the key itself.
 *
 * Messages name paths and sizes, never key bytes.
 */
import { dirname, resolve } from "../paths.ts";
import nacl from "tweetnacl";
import { Code, LinkdError } from "../errors.ts";
import { timingSafeEqual, utf8, wipe } from "../bytes.ts";
import { readAtMost } from "../files.ts";

/** Size of the root key the part holds. */
export const ROOT_KEY_BYTES = 32;
/** The file's magic, format version 1. */
export const OTP_MAGIC = "LKO1";
const MAGIC_BYTES = 4;
/** Size of the integrity check (truncated SHA-512). */
export const OTP_CHECK_BYTES = 8;
/** Exact size of a programmed OTP file. */
export const OTP_FILE_BYTES = MAGIC_BYTES + ROOT_KEY_BYTES + OTP_CHECK_BYTES;

const MAGIC = utf8.encode(OTP_MAGIC);

export type OtpState = "blank" | "programmed";

function check(image: Uint8Array): Uint8Array {
  const h = nacl.hash(image.subarray(0, MAGIC_BYTES + ROOT_KEY_BYTES));
  const c = h.slice(0, OTP_CHECK_BYTES);
  wipe(h);
  return c;
}

function missingFolder(folder: string, cause?: unknown): LinkdError {
  return new LinkdError(
    Code.OTP_MISSING,
    `Cannot open OTP key store: folder ${folder} does not exist (create it, then run again)`,
    cause === undefined ? undefined : { cause },
  );
}

export class OtpStore {
  readonly path: string;
  readonly #folder: string;

  private constructor(path: string) {
    this.path = path;
    this.#folder = dirname(resolve(path));
  }

  /**
   * Opens the emulated part at `path`. Its folder must exist (OTP_MISSING otherwise); the file
   * itself may be missing, which is a blank part. Nothing is read or written yet.
   */
  static open(path: string): OtpStore {
    if (path.length === 0) throw new TypeError("OtpStore.open() path must not be empty");
    const store = new OtpStore(path);
    store.#checkFolder();
    return store;
  }

  /** "blank" for a missing or empty file, "programmed" for a valid one; OTP_CORRUPT otherwise. */
  state(): OtpState {
    const image = this.#read();
    if (image === null) return "blank";
    this.#validate(image);
    wipe(image);
    return "programmed";
  }

  /** A copy of the 32-byte root key (the caller wipes it). OTP_BLANK when not programmed. */
  readRootKey(): Uint8Array {
    const key = this.rootKeyIfProgrammed();
    if (key === null) {
      throw new LinkdError(
        Code.OTP_BLANK,
        `Cannot read root key: OTP key store ${this.path} is blank (provision the device first)`,
      );
    }
    return key;
  }

  /**
   * A copy of the root key (the caller wipes it), or null for a blank part: state() and
   * readRootKey() in one read. OTP_CORRUPT as readRootKey().
   */
  rootKeyIfProgrammed(): Uint8Array | null {
    const image = this.#read();
    if (image === null) return null;
    this.#validate(image);
    const key = image.slice(MAGIC_BYTES, MAGIC_BYTES + ROOT_KEY_BYTES);
    wipe(image);
    return key;
  }

  /**
   * Programs `rootKey` (32 bytes) into a blank part, once. A programmed part is refused with
   * OTP_PROGRAMMED and a corrupt one with OTP_CORRUPT; in both cases the file is not touched.
   * The file is written in one call and fsynced, then read back and verified.
   */
  program(rootKey: Uint8Array): void {
    if (rootKey.length !== ROOT_KEY_BYTES) {
      throw new TypeError(
        `OtpStore.program() root key must be ${ROOT_KEY_BYTES} bytes, got ${rootKey.length}`,
      );
    }
    if (rootKey.every((b) => b === 0) || rootKey.every((b) => b === 0xff)) {
      throw new TypeError("OtpStore.program() root key must be random, not all 0x00 or all 0xFF");
    }
    if (this.state() === "programmed") {
      throw new LinkdError(
        Code.OTP_PROGRAMMED,
        `Cannot program root key: OTP key store ${this.path} is already programmed`,
      );
    }

    const image = new Uint8Array(OTP_FILE_BYTES);
    image.set(MAGIC, 0);
    image.set(rootKey, MAGIC_BYTES);
    const c = check(image);
    image.set(c, MAGIC_BYTES + ROOT_KEY_BYTES);
    try {
      this.#writeBlank(image);
    } finally {
      wipe(image);
    }

    // Read back, as one would verify a fused part.
    const back = this.readRootKey();
    const ok = timingSafeEqual(back, rootKey);
    wipe(back);
    if (!ok) {
      throw new LinkdError(
        Code.OTP_CORRUPT,
        `Cannot program root key: OTP key store ${this.path} reads back differently`,
      );
    }
  }

  #checkFolder(): void {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.#folder);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw missingFolder(this.#folder, e);
      throw new LinkdError(
        Code.IO,
        `Cannot open OTP key store: cannot read folder ${this.#folder}`,
        { cause: e },
      );
    }
    if (!info.isDirectory) {
      throw new LinkdError(
        Code.OTP_MISSING,
        `Cannot open OTP key store: ${this.#folder} is not a folder (create the folder, then run again)`,
      );
    }
  }

  /**
   * The file's bytes, or null for a blank part (missing or empty file). At most one byte more
   * than a programmed part holds is read: a longer file (or a device that never ends, such as
   * /dev/zero) is OTP_CORRUPT.
   */
  #read(): Uint8Array | null {
    let data: Uint8Array;
    try {
      const file = Deno.openSync(this.path, { read: true });
      try {
        if (file.statSync().isDirectory) throw new Deno.errors.IsADirectory();
        data = readAtMost(file, OTP_FILE_BYTES + 1);
      } finally {
        file.close();
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        this.#checkFolder();
        return null;
      }
      if (e instanceof Deno.errors.IsADirectory) {
        throw new LinkdError(
          Code.OTP_CORRUPT,
          `Cannot read OTP key store: ${this.path} is a folder, not a file`,
          { cause: e },
        );
      }
      throw new LinkdError(Code.IO, `Cannot read OTP key store ${this.path}`, { cause: e });
    }
    return data.length === 0 ? null : data;
  }

  /** OTP_CORRUPT unless `image` is a well-formed programmed part; wipes `image` when it is not. */
  #validate(image: Uint8Array): void {
    const corrupt = (what: string) =>
      new LinkdError(Code.OTP_CORRUPT, `Cannot read OTP key store ${this.path}: ${what}`);
    if (image.length !== OTP_FILE_BYTES) {
      wipe(image);
      const size = image.length > OTP_FILE_BYTES
        ? `more than ${OTP_FILE_BYTES}`
        : String(image.length);
      throw corrupt(`file is ${size} bytes, expected ${OTP_FILE_BYTES}`);
    }
    if (!timingSafeEqual(image.subarray(0, MAGIC_BYTES), MAGIC)) {
      wipe(image);
      throw corrupt(`bad magic, expected "${OTP_MAGIC}"`);
    }
    const c = check(image);
    const ok = timingSafeEqual(c, image.subarray(MAGIC_BYTES + ROOT_KEY_BYTES));
    wipe(c);
    if (!ok) {
      wipe(image);
      throw corrupt("integrity check failed");
    }
  }

  /** Writes `image` into a missing or empty file: one write, fsync, close, then fsync the folder. */
  #writeBlank(image: Uint8Array): void {
    let file: Deno.FsFile;
    try {
      // createNew when missing so two provisioners cannot both create it; an existing empty
      // file is opened without truncation and checked to still be empty.
      let exists = true;
      try {
        Deno.statSync(this.path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        exists = false;
      }
      file = exists
        ? Deno.openSync(this.path, { write: true })
        : Deno.openSync(this.path, { write: true, createNew: true, mode: 0o600 });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw missingFolder(this.#folder, e);
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new LinkdError(
          Code.OTP_PROGRAMMED,
          `Cannot program root key: OTP key store ${this.path} was created by someone else`,
          { cause: e },
        );
      }
      throw new LinkdError(Code.IO, `Cannot write OTP key store ${this.path}`, { cause: e });
    }
    try {
      if (file.statSync().size !== 0) {
        throw new LinkdError(
          Code.OTP_PROGRAMMED,
          `Cannot program root key: OTP key store ${this.path} is no longer blank`,
        );
      }
      let off = 0;
      while (off < image.length) off += file.writeSync(image.subarray(off));
      file.syncSync();
    } catch (e) {
      if (e instanceof LinkdError) throw e;
      throw new LinkdError(Code.IO, `Cannot write OTP key store ${this.path}`, { cause: e });
    } finally {
      file.close();
    }
    // Make the new directory entry durable too; best effort (not every platform allows it).
    try {
      const dir = Deno.openSync(this.#folder, { read: true });
      try {
        dir.syncSync();
      } finally {
        dir.close();
      }
    } catch {
      // ignored: the file's own data is already synced
    }
  }
}
