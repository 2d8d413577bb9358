/**
 * The one-time-programmable key store (`keys.otpPath`, CONTRACT.md section 2), emulated by a
 * regular file. A missing or empty file is a blank part; `program` writes the root key once and
 * the part then refuses every further write, like an eFuse block.
 *
 * File format, version 2 (OTP_FILE_BYTES = 76 bytes), written by provisioning:
 *
 *     offset  size  field
 *     0       4     magic "LKO2"
 *     4       32    root key
 *     36      32    identity binding (seal/binding.ts)
 *     68      8     check: SHA-512(bytes 0..68), first 8 bytes
 *
 * Version 1 (OTP_V1_FILE_BYTES = 44 bytes: magic "LKO1", root key, check over bytes 0..36) is
 * what linkd wrote before the binding existed; such parts still read, with no binding.
 *
 * The identity binding is a MAC, under a key derived from the root key, of the serial, product id
 * and client id the device was provisioned with. It is burnt in the same single write as the
 * root key, before anything goes to flash, so the OTP alone says which identity the device has
 * for life: a provisioning cut short continues only with that identity, and a device whose flash
 * lost its identity record gets the same one back (`linkd repair`), never another. A real part
 * keeps it in spare OTP words beside the root key (an eFuse block has 256 bits to spare).
 *
 * The check makes a damaged file OTP_CORRUPT instead of a silently wrong key (which would make
 * every sealed record fail to open with SEAL_AUTH, far from the cause). It is an integrity
 * check, not a secret: the file holds the key itself.
 *
 * Messages name paths and sizes, never key bytes.
 */
import { invalidArgument } from "../text.ts";
import { dirname, resolve } from "../paths.ts";
import nacl from "tweetnacl";
import { Code, LinkdError } from "../errors.ts";
import { timingSafeEqual, utf8, wipe } from "../bytes.ts";
import {
  createFileAtomically,
  openRegularFile,
  readRegularFile,
  reasonOf,
  writeAll,
} from "../files.ts";

/** Size of the root key the part holds. */
export const ROOT_KEY_BYTES = 32;
/** The file's magic, format version 2 (with the identity binding). */
export const OTP_MAGIC = "LKO2";
/** The magic of format version 1 (no binding), still read. */
export const OTP_V1_MAGIC = "LKO1";
const MAGIC_BYTES = 4;
/** Size of the identity binding (seal/binding.ts). */
export const BINDING_BYTES = 32;
/** Size of the integrity check (truncated SHA-512). */
export const OTP_CHECK_BYTES = 8;
/** Exact size of a programmed OTP file (format 2). */
export const OTP_FILE_BYTES = MAGIC_BYTES + ROOT_KEY_BYTES + BINDING_BYTES + OTP_CHECK_BYTES;
/** Exact size of a format 1 file. */
export const OTP_V1_FILE_BYTES = MAGIC_BYTES + ROOT_KEY_BYTES + OTP_CHECK_BYTES;

const MAGIC = utf8.encode(OTP_MAGIC);
const V1_MAGIC = utf8.encode(OTP_V1_MAGIC);

export type OtpState = "blank" | "programmed";

/** What a programmed part holds: copies the caller wipes. */
export interface OtpContents {
  rootKey: Uint8Array;
  /** The identity binding; null on a format 1 part, written before bindings existed. */
  binding: Uint8Array | null;
}

/** The check over everything before it (`image` is a whole file of either format). */
function check(image: Uint8Array): Uint8Array {
  const h = nacl.hash(image.subarray(0, image.length - OTP_CHECK_BYTES));
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
  /**
   * The part's image once it was read programmed and valid: a programmed part never changes (a
   * real one cannot), so it is read once per process, not at every look (boot, status).
   */
  #kept: Uint8Array | null = null;

  private constructor(path: string) {
    this.path = path;
    this.#folder = dirname(resolve(path));
  }

  /**
   * Opens the emulated part at `path`. Its folder must exist (OTP_MISSING otherwise); the file
   * itself may be missing, which is a blank part. Nothing is read or written yet.
   */
  static open(path: string): OtpStore {
    if (path.length === 0) throw invalidArgument("OtpStore.open() path must not be empty");
    const store = new OtpStore(path);
    store.#checkFolder();
    return store;
  }

  /** "blank" for a missing or empty file, "programmed" for a valid one; OTP_CORRUPT otherwise. */
  state(): OtpState {
    const image = this.#programmed();
    if (image === null) return "blank";
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
    const c = this.contentsIfProgrammed();
    if (c?.binding) wipe(c.binding);
    return c?.rootKey ?? null;
  }

  /** The root key and identity binding (copies), or null for a blank part; OTP_CORRUPT as above. */
  contentsIfProgrammed(): OtpContents | null {
    const image = this.#programmed();
    if (image === null) return null;
    const rootKey = image.slice(MAGIC_BYTES, MAGIC_BYTES + ROOT_KEY_BYTES);
    const binding = image.length === OTP_FILE_BYTES
      ? image.slice(MAGIC_BYTES + ROOT_KEY_BYTES, MAGIC_BYTES + ROOT_KEY_BYTES + BINDING_BYTES)
      : null;
    wipe(image);
    return { rootKey, binding };
  }

  /**
   * Programs `rootKey` (32 bytes) and the identity `binding` (32 bytes) into a blank part, once,
   * in one write (format 2). Without `binding` it writes format 1, a part with no binding, as
   * linkd did before bindings existed (kept for tests of such parts; provisioning always binds).
   * A programmed part is refused with OTP_PROGRAMMED and a corrupt one with OTP_CORRUPT; in both
   * cases the file is not touched. The file is written in one call and fsynced, then read back
   * and verified.
   */
  program(rootKey: Uint8Array, binding?: Uint8Array): void {
    if (binding !== undefined && binding.length !== BINDING_BYTES) {
      throw invalidArgument(
        `OtpStore.program() binding must be ${BINDING_BYTES} bytes, got ${binding.length}`,
      );
    }
    if (rootKey.length !== ROOT_KEY_BYTES) {
      throw invalidArgument(
        `OtpStore.program() root key must be ${ROOT_KEY_BYTES} bytes, got ${rootKey.length}`,
      );
    }
    if (rootKey.every((b) => b === 0) || rootKey.every((b) => b === 0xff)) {
      throw invalidArgument("OtpStore.program() root key must be random, not all 0x00 or all 0xFF");
    }
    if (this.state() === "programmed") throw this.#taken("is already programmed");

    const image = new Uint8Array(binding ? OTP_FILE_BYTES : OTP_V1_FILE_BYTES);
    image.set(binding ? MAGIC : V1_MAGIC, 0);
    image.set(rootKey, MAGIC_BYTES);
    if (binding) image.set(binding, MAGIC_BYTES + ROOT_KEY_BYTES);
    image.set(check(image), image.length - OTP_CHECK_BYTES);
    try {
      this.#writeBlank(image);
    } finally {
      wipe(image);
    }

    // Read back, as one would verify a fused part.
    const back = this.contentsIfProgrammed();
    const ok = back !== null && timingSafeEqual(back.rootKey, rootKey) &&
      (binding ? back.binding !== null && timingSafeEqual(back.binding, binding) : !back.binding);
    if (back) wipe(back.rootKey);
    if (back?.binding) wipe(back.binding);
    if (!ok) throw this.#taken("reads back differently", Code.OTP_CORRUPT);
  }

  /** OTP_PROGRAMMED (or `code`) for a part that cannot take the root key: `what` says why. */
  #taken(
    what: string,
    code: typeof Code.OTP_PROGRAMMED | typeof Code.OTP_CORRUPT = Code.OTP_PROGRAMMED,
  ): LinkdError {
    return new LinkdError(code, `Cannot program root key: OTP key store ${this.path} ${what}`);
  }

  /** A copy of the valid image of a programmed part, or null for a blank one; OTP_CORRUPT. */
  #programmed(): Uint8Array | null {
    if (this.#kept) return this.#kept.slice();
    const image = this.#read();
    if (image === null) return null;
    this.#validate(image);
    this.#kept = image.slice();
    return image;
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
    // Only a regular file is opened: a FIFO or a device there could block linkd (files.ts).
    // Something else there is OTP_CORRUPT (65); a file that cannot be read is IO.
    const data = readRegularFile(this.path, OTP_FILE_BYTES + 1, (why, cause) =>
      new LinkdError(
        cause === undefined ? Code.OTP_CORRUPT : Code.IO,
        `Cannot read OTP key store ${this.path}: ${why}`,
        cause === undefined ? undefined : { cause },
      ));
    if (data === null) {
      this.#checkFolder();
      return null;
    }
    return data.length === 0 ? null : data;
  }

  /** OTP_CORRUPT unless `image` is a well-formed programmed part; wipes `image` when it is not. */
  #validate(image: Uint8Array): void {
    const corrupt = (what: string) =>
      new LinkdError(Code.OTP_CORRUPT, `Cannot read OTP key store ${this.path}: ${what}`);
    if (image.length !== OTP_FILE_BYTES && image.length !== OTP_V1_FILE_BYTES) {
      wipe(image);
      const size = image.length > OTP_FILE_BYTES
        ? `more than ${OTP_FILE_BYTES}`
        : String(image.length);
      throw corrupt(`file is ${size} bytes, expected ${OTP_FILE_BYTES} (or ${OTP_V1_FILE_BYTES})`);
    }
    const magic = image.length === OTP_FILE_BYTES ? MAGIC : V1_MAGIC;
    if (!timingSafeEqual(image.subarray(0, MAGIC_BYTES), magic)) {
      wipe(image);
      const name = image.length === OTP_FILE_BYTES ? OTP_MAGIC : OTP_V1_MAGIC;
      throw corrupt(`bad magic, expected "${name}" for a file of ${image.length} bytes`);
    }
    const c = check(image);
    const ok = timingSafeEqual(c, image.subarray(image.length - OTP_CHECK_BYTES));
    wipe(c);
    if (!ok) {
      wipe(image);
      throw corrupt("integrity check failed");
    }
  }

  /**
   * Writes `image` into a missing or empty file, whole or not at all: a full disk or an I/O error
   * is FILE_WRITE (exit 66) and leaves the part blank (missing or empty), never a partial file,
   * which would read as OTP_CORRUPT for ever.
   */
  #writeBlank(image: Uint8Array): void {
    const cannot = (why: string, cause?: unknown) =>
      new LinkdError(
        Code.FILE_WRITE,
        `Cannot program root key: cannot write OTP key store ${this.path}: ${why}; it was left blank`,
        cause === undefined ? undefined : { cause },
      );
    // An existing empty file (a blank part someone created) is written in place, checked to be
    // still empty, and cut back to empty if the write fails; a missing one is created whole
    // (files.ts createFileAtomically), never over a file another provisioner created.
    const opened = openRegularFile(
      this.path,
      (why, cause) =>
        cause === undefined
          ? new LinkdError(Code.OTP_CORRUPT, `Cannot program root key: ${this.path}: ${why}`)
          : cannot(why, cause),
      { write: true },
    );
    if (opened === null) {
      this.#checkFolder();
      const made = createFileAtomically(this.path, (f) => writeAll(f, image), cannot, {
        mode: 0o600,
      });
      if (made === "exists") throw this.#taken("was created by someone else");
      return;
    }
    const file = opened.file;
    try {
      if (opened.info.size !== 0) throw this.#taken("is no longer blank");
      try {
        writeAll(file, image);
        file.syncSync();
      } catch (e) {
        try {
          file.truncateSync(0);
          file.syncSync();
        } catch {
          // the error below says what happened
        }
        throw cannot(reasonOf(e), e);
      }
    } finally {
      file.close();
    }
  }
}
