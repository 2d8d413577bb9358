/**
 * Opens the device's persistent parts named by the configuration: the flash partition (through
 * a flash driver), the record store on it, and the OTP key store; the vault on top of them
 * once the OTP holds a root key. One process at a time: the flash is locked while open.
 */
import nacl from "tweetnacl";
import { type CancelTimer, startTimer } from "./timers.ts";
import { dirname } from "./paths.ts";
import { wipe } from "./bytes.ts";
import { createFileAtomically, type Fail, openRegularFile, readAtMost, reasonOf } from "./files.ts";
import type { Config } from "./config.ts";
import { Code, LinkdError } from "./errors.ts";
import type { FlashDriver } from "./flash/driver.ts";
import { NorEmulator, wrongSize } from "./flash/nor_emulator.ts";
import { OtpStore } from "./seal/otp.ts";
import type { SignedIdentity } from "./records/identity.ts";
import { RecordStore } from "./store/record_store.ts";
import { RecordType } from "./records/types.ts";
import { Vault } from "./store/vault.ts";

export interface DeviceEffects {
  /** `n` random bytes from a cryptographic source. */
  random(n: number): Uint8Array;
}

export const systemEffects: DeviceEffects = { random: (n) => nacl.randomBytes(n) };

/**
 * What the flash file was when the device was opened read-only: "missing" and "empty" are read
 * as an erased part without creating or filling anything (status never writes a file).
 */
export type FlashFileState = "present" | "missing" | "empty";

/** What boot finds: a blank device, a provisioned one with its identity, or a damaged one. */
export type BootIdentity =
  | { readonly kind: "blank" }
  | { readonly kind: "provisioned"; readonly signed: SignedIdentity }
  | { readonly kind: "damaged"; readonly detail: string };

export class Device {
  readonly config: Config;
  readonly flash: FlashDriver;
  readonly store: RecordStore;
  readonly otp: OtpStore;
  readonly effects: DeviceEffects;
  /** "present" unless a read-only open found the flash file missing or empty. */
  readonly flashFile: FlashFileState;
  /** The open flash file holding the lock; null for a read-only or in-memory device. */
  #lock: Deno.FsFile | null;
  #vault: Vault | null = null;

  private constructor(
    config: Config,
    flash: FlashDriver,
    otp: OtpStore,
    lock: Deno.FsFile | null,
    fx: DeviceEffects,
    flashFile: FlashFileState = "present",
  ) {
    this.config = config;
    this.flash = flash;
    this.otp = otp;
    this.#lock = lock;
    this.effects = fx;
    this.flashFile = flashFile;
    this.store = RecordStore.mount(flash);
  }

  /** A device over parts the caller made (an emulated part in memory, in tests); no lock. */
  static fromParts(
    config: Config,
    flash: FlashDriver,
    otp: OtpStore,
    fx: DeviceEffects = systemEffects,
  ): Device {
    return new Device(config, flash, otp, null, fx);
  }

  /**
   * Opens the flash partition of `config` (a regular file is an emulated NOR part, created
   * erased when missing) and mounts the store. A writer waits for another linkd writer (the
   * daemon holds the flash while it runs) to let go of it. `readOnly` (status) takes no lock
   * and never creates, fills or writes a file: it reads the image into memory (a missing or
   * empty file reads as an erased part, see `flashFile`), and the log reads consistently even
   * while a writer appends to it (a write in flight reads as an interrupted one). The daemon's
   * open (not `readOnly`) is read-only too where the part is missing or empty beside a written
   * OTP: that is damage, kept as evidence (keepAsEvidence).
   */
  static open(
    config: Config,
    fx: DeviceEffects = systemEffects,
    options: { readOnly?: boolean } = {},
  ): Device {
    if (options.readOnly || keepAsEvidence(config)) return Device.#openReadOnly(config, fx);
    const { otp, lock } = openPart(config);
    try {
      lock.lockSync(true);
    } catch (e) {
      lock.close();
      throw e;
    }
    return Device.#mount(config, otp, lock, fx);
  }

  /**
   * Opens the flash for a foreground command that writes (provision, logout, factory-reset):
   * waits at most `waitMs` for another linkd (the running daemon) to let go of it, then fails
   * with FLASH_BUSY (exit 75) instead of hanging. The message points to the bus only for a
   * command the daemon takes there (`busCommand`, e.g. "logout": `P/cmd/logout`); for the others
   * linkd has to be stopped first.
   */
  static async openForWrite(
    config: Config,
    fx: DeviceEffects = systemEffects,
    options: { waitMs?: number; busCommand?: string } = {},
  ): Promise<Device> {
    const waitMs = options.waitMs ?? 3000;
    const { otp, lock } = openPart(config);
    let cancel: CancelTimer | undefined;
    const timeout = new Promise<"busy">((r) => (cancel = startTimer(waitMs, () => r("busy"))));
    try {
      const got = await Promise.race([lock.lock(true).then(() => "locked" as const), timeout]);
      if (got === "busy") {
        const what = options.busCommand === undefined
          ? "stop it first, then run this again"
          : `stop it first, or send ${config.bus.prefix}/cmd/${options.busCommand} on the bus`;
        throw new LinkdError(
          Code.FLASH_BUSY,
          `Cannot open flash ${config.flash.path}: it is in use by a running linkd; ${what}`,
        );
      }
    } catch (e) {
      lock.close();
      throw e;
    } finally {
      cancel?.();
    }
    return Device.#mount(config, otp, lock, fx);
  }

  /** The read-only open: the image read into memory with a bound; nothing created or written. */
  static #openReadOnly(config: Config, fx: DeviceEffects): Device {
    const otp = OtpStore.open(config.keys.otpPath);
    const path = config.flash.path;
    const size = config.flash.size;
    const fail = flashFail(path);
    // Only a regular file is opened (a FIFO would block), as for writers (openPart).
    const opened = openRegularFile(path, fail);
    if (opened === null) {
      checkFolder(path);
      return new Device(config, NorEmulator.memory(config.flash), otp, null, fx, "missing");
    }
    let image: Uint8Array;
    try {
      image = readAtMost(opened.file, size + 1);
    } catch (e) {
      throw fail(reasonOf(e), e);
    } finally {
      opened.file.close();
    }
    if (image.length === 0) {
      return new Device(config, NorEmulator.memory(config.flash), otp, null, fx, "empty");
    }
    if (image.length !== size) {
      const n = image.length > size ? `more than ${size}` : String(image.length);
      throw wrongSize(`open flash file ${path}`, n, size);
    }
    return new Device(config, NorEmulator.fromImage(image, config.flash), otp, null, fx);
  }

  static #mount(
    config: Config,
    otp: OtpStore,
    lock: Deno.FsFile,
    fx: DeviceEffects,
  ): Device {
    const path = config.flash.path;
    let flash: FlashDriver | null = null;
    try {
      // Under the lock: a new part is filled by one process only.
      if (lock.statSync().size === 0) eraseNew(lock, config.flash.size, path);
      flash = NorEmulator.openFile(path, config.flash);
      return new Device(config, flash, otp, lock, fx);
    } catch (e) {
      flash?.close();
      lock.close();
      throw e;
    }
  }

  /** The vault, once the OTP holds a root key (OTP_BLANK before provisioning). */
  vault(): Vault {
    return this.#vault ?? this.#openVault(this.otp.readRootKey());
  }

  /** The vault, or null while the OTP is blank: one read of the OTP, not state() then vault(). */
  vaultIfProgrammed(): Vault | null {
    if (this.#vault) return this.#vault;
    const root = this.otp.rootKeyIfProgrammed();
    return root === null ? null : this.#openVault(root);
  }

  /**
   * The vault and the OTP's identity binding (a copy the caller wipes; null on a format 1 part),
   * with one read of the OTP; null while the OTP is blank.
   */
  vaultAndBinding(): { vault: Vault; binding: Uint8Array | null } | null {
    const c = this.otp.contentsIfProgrammed();
    if (c === null) return null;
    if (this.#vault) {
      wipe(c.rootKey);
      return { vault: this.#vault, binding: c.binding };
    }
    return { vault: this.#openVault(c.rootKey), binding: c.binding };
  }

  /** Opens the vault with `root` (then wiped). */
  #openVault(root: Uint8Array): Vault {
    try {
      this.#vault = new Vault(this.store, root, this.effects.random);
    } finally {
      wipe(root);
    }
    return this.#vault;
  }

  /**
   * The identity for boot, with one read of the OTP. Blank while the OTP is; once it holds a root
   * key the device is provisioned, and a flash without a readable identity (damaged, erased, or
   * no valid sector) is damage, reported with a line for people, never taken for a blank device.
   * OTP_CORRUPT when the OTP cannot be read.
   */
  bootIdentity(): BootIdentity {
    const got = this.vaultAndBinding();
    if (got === null) return { kind: "blank" };
    if (got.binding) wipe(got.binding);
    const health = this.store.health;
    const repair = "it needs repair (see linkd status)";
    if (health.noLog) {
      return {
        kind: "damaged",
        detail: `The flash holds no valid sector though the device is provisioned; ${repair}`,
      };
    }
    if (health.lostKeys.includes(RecordType.IDENTITY)) {
      return { kind: "damaged", detail: `The identity record is damaged on flash; ${repair}` };
    }
    let signed: SignedIdentity | null;
    try {
      signed = got.vault.identity();
    } catch (e) {
      const why = e instanceof LinkdError ? e.message : "it cannot be read";
      return { kind: "damaged", detail: `${why}; ${repair}` };
    }
    if (signed === null) {
      return {
        kind: "damaged",
        detail: `The flash holds no identity record though the device is provisioned; ${repair}`,
      };
    }
    return { kind: "provisioned", signed };
  }

  /**
   * True once the OTP holds a root key, whatever the flash says (CONTRACT.md section 3): a wiped
   * or damaged flash never makes a device blank. OTP_CORRUPT when the OTP cannot be read.
   */
  isProvisioned(): boolean {
    return this.otp.state() === "programmed";
  }

  close(): void {
    this.#vault?.dispose();
    this.#vault = null;
    try {
      this.flash.sync();
    } finally {
      this.flash.close();
      const lock = this.#lock;
      if (lock) {
        try {
          lock.unlockSync();
        } finally {
          lock.close();
        }
      }
    }
  }
}

/**
 * True when the flash file is missing or empty while the OTP holds a root key: that is damage
 * (the device was provisioned), and the daemon's open must not create or fill the file over the
 * evidence; it opens the part read-only, and boot reports `store_damaged`. Only a command that
 * asks for it (repair, factory-reset, logout) writes a new part there.
 */
function keepAsEvidence(config: Config): boolean {
  let size: number;
  try {
    size = Deno.statSync(config.flash.path).size;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return false; // openPart says what is wrong
    size = 0;
  }
  return size === 0 && OtpStore.open(config.keys.otpPath).state() === "programmed";
}

/** Writes `size` erased bytes (0xFF) to `file`, in pieces of at most 64 KiB. */
function writeErased(file: Deno.FsFile, size: number): void {
  const erased = new Uint8Array(Math.min(size, 1 << 16)).fill(0xff);
  for (let done = 0; done < size;) {
    done += file.writeSync(erased.subarray(0, Math.min(erased.length, size - done)));
  }
}

/** FILE_WRITE for a flash file that could not be created or filled; nothing of it is left. */
function cannotCreate(path: string, why: string, cause?: unknown): LinkdError {
  return new LinkdError(
    Code.FILE_WRITE,
    `Cannot create flash ${path}: ${why}; nothing was left behind: free space, then run again`,
    { cause },
  );
}

/**
 * Fills a new, empty emulated part (an empty file someone made) with erased bytes (0xFF), then
 * syncs it. On a full disk or an I/O error the file is cut back to empty, as it was: a partial
 * part would read as the wrong size ever after.
 */
function eraseNew(file: Deno.FsFile, size: number, path: string): void {
  try {
    writeErased(file, size);
    file.syncDataSync();
  } catch (e) {
    try {
      file.truncateSync(0);
      file.syncDataSync();
    } catch {
      // nothing more to be done: the error below says what happened
    }
    throw cannotCreate(path, reasonOf(e), e);
  }
}

/** FLASH_MISSING (66) when the folder of a missing flash file does not exist either. */
function checkFolder(path: string): void {
  try {
    if (Deno.statSync(dirname(path)).isDirectory) return;
  } catch {
    // reported below
  }
  throw new LinkdError(
    Code.FLASH_MISSING,
    `Cannot open flash ${path}: its folder ${
      dirname(path)
    } does not exist; create it or fix flash.path`,
  );
}

/** FLASH_IO (65) for a flash path that is not a regular file or cannot be opened or read. */
function flashFail(path: string): Fail {
  return (why, cause) =>
    new LinkdError(
      Code.FLASH_IO,
      `Cannot open flash ${path}: ${why}${
        why.endsWith("not a regular file")
          ? "; this build drives emulated parts only: point flash.path at a file"
          : ""
      }`,
      cause === undefined ? undefined : { cause },
    );
}

/**
 * Checks the flash path and opens it (not yet locked), with the OTP store of `config`. A
 * missing emulated part is created erased in one piece (files.ts createFileAtomically): a full
 * disk leaves no file, never a partial one. Only a regular file is opened (a FIFO or a device
 * could block linkd; this build drives emulated parts only): anything else is FLASH_IO, exit 65.
 */
function openPart(config: Config): { otp: OtpStore; lock: Deno.FsFile } {
  const otp = OtpStore.open(config.keys.otpPath);
  const path = config.flash.path;
  const fail = flashFail(path);
  // Lock first, read after: a second linkd waits for the lock and then sees what the first wrote.
  let opened = openRegularFile(path, fail, { write: true });
  if (opened === null) {
    checkFolder(path);
    // "exists": another linkd created it meanwhile, whole; it is used as it is.
    createFileAtomically(
      path,
      (file) => writeErased(file, config.flash.size),
      (why, cause) => cannotCreate(path, why, cause),
    );
    opened = openRegularFile(path, fail, { write: true });
    if (opened === null) throw fail("it is a symbolic link to nothing, or was removed meanwhile");
  }
  return { otp, lock: opened.file };
}
