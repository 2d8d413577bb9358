/**
 * Opens the device's persistent parts named by the configuration: the flash partition (through
 * a flash driver), the record store on it, and the OTP key store; the vault on top of them
 * once the OTP holds a root key. One process at a time: the flash is locked while open.
 */
import nacl from "tweetnacl";
import { type CancelTimer, startTimer } from "./timers.ts";
import { dirname } from "./paths.ts";
import { wipe } from "./bytes.ts";
import type { Config } from "./config.ts";
import { Code, LinkdError } from "./errors.ts";
import type { FlashDriver } from "./flash/driver.ts";
import { NorEmulator } from "./flash/nor_emulator.ts";
import { OtpStore } from "./seal/otp.ts";
import { RecordStore } from "./store/record_store.ts";
import { Vault } from "./store/vault.ts";

export interface DeviceEffects {
  /** `n` random bytes from a cryptographic source. */
  random(n: number): Uint8Array;
}

export const systemEffects: DeviceEffects = { random: (n) => nacl.randomBytes(n) };

export class Device {
  readonly config: Config;
  readonly flash: FlashDriver;
  readonly store: RecordStore;
  readonly otp: OtpStore;
  readonly effects: DeviceEffects;
  #lock: Deno.FsFile;
  #vault: Vault | null = null;

  private constructor(
    config: Config,
    flash: FlashDriver,
    otp: OtpStore,
    lock: Deno.FsFile,
    fx: DeviceEffects,
  ) {
    this.config = config;
    this.flash = flash;
    this.otp = otp;
    this.#lock = lock;
    this.effects = fx;
    this.store = RecordStore.mount(flash);
  }

  /**
   * Opens the flash partition of `config` (a regular file is an emulated NOR part, created
   * erased when missing) and mounts the store. A writer waits for another linkd writer (the
   * daemon holds the flash while it runs) to let go of it. `readOnly` (status) takes no lock:
   * it only reads, and the log reads consistently even while a writer appends to it (a write
   * in flight reads as an interrupted one).
   */
  static open(
    config: Config,
    fx: DeviceEffects = systemEffects,
    options: { readOnly?: boolean } = {},
  ): Device {
    const { otp, lock } = openPart(config);
    try {
      if (!options.readOnly) lock.lockSync(true);
    } catch (e) {
      lock.close();
      throw e;
    }
    return Device.#mount(config, otp, lock, fx, options.readOnly ?? false);
  }

  /**
   * Opens the flash for a foreground command that writes (provision, logout, factory-reset):
   * waits at most `waitMs` for another linkd (the running daemon) to let go of it, then fails
   * with FLASH_BUSY (exit 69) instead of hanging.
   */
  static async openForWrite(
    config: Config,
    fx: DeviceEffects = systemEffects,
    waitMs = 3000,
  ): Promise<Device> {
    const { otp, lock } = openPart(config);
    let cancel: CancelTimer | undefined;
    const timeout = new Promise<"busy">((r) => (cancel = startTimer(waitMs, () => r("busy"))));
    try {
      const got = await Promise.race([lock.lock(true).then(() => "locked" as const), timeout]);
      if (got === "busy") {
        throw new LinkdError(
          Code.FLASH_BUSY,
          `Cannot open flash ${config.flash.path}: it is in use by a running linkd; stop it first, or send the command on the bus`,
        );
      }
    } catch (e) {
      lock.close();
      throw e;
    } finally {
      cancel?.();
    }
    return Device.#mount(config, otp, lock, fx, false);
  }

  static #mount(
    config: Config,
    otp: OtpStore,
    lock: Deno.FsFile,
    fx: DeviceEffects,
    readOnly: boolean,
  ): Device {
    const path = config.flash.path;
    let flash: FlashDriver | null = null;
    try {
      if (lock.statSync().size === 0) {
        lock.lockSync(true); // a new part is filled by one process only
        if (lock.statSync().size === 0) eraseNew(lock, config.flash.size);
        if (readOnly) lock.unlockSync();
      }
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

  /** Opens the vault with `root` (then wiped). */
  #openVault(root: Uint8Array): Vault {
    try {
      this.#vault = new Vault(this.store, root, this.effects.random);
    } finally {
      wipe(root);
    }
    return this.#vault;
  }

  /** True once the OTP holds a root key and the identity record is in the store. */
  isProvisioned(): boolean {
    return this.vaultIfProgrammed()?.identity() != null;
  }

  close(): void {
    this.#vault?.dispose();
    this.#vault = null;
    try {
      this.flash.sync();
    } finally {
      this.flash.close();
      try {
        this.#lock.unlockSync();
      } finally {
        this.#lock.close();
      }
    }
  }
}

/** Fills a new, empty emulated part with erased bytes (0xFF). */
function eraseNew(file: Deno.FsFile, size: number): void {
  const erased = new Uint8Array(Math.min(size, 1 << 16)).fill(0xff);
  for (let done = 0; done < size;) {
    done += file.writeSync(erased.subarray(0, Math.min(erased.length, size - done)));
  }
  file.syncDataSync();
}

/** Checks the flash path and opens it (not yet locked), with the OTP store of `config`. */
function openPart(config: Config): { otp: OtpStore; lock: Deno.FsFile } {
  const otp = OtpStore.open(config.keys.otpPath);
  const path = config.flash.path;
  let info: Deno.FileInfo | null = null;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new LinkdError(Code.FLASH_IO, `Cannot open flash ${path}: ${(e as Error).name}`);
    }
  }
  if (info === null) {
    try {
      if (!Deno.statSync(dirname(path)).isDirectory) throw new Deno.errors.NotFound();
    } catch {
      throw new LinkdError(
        Code.FLASH_MISSING,
        `Cannot open flash ${path}: its folder ${
          dirname(path)
        } does not exist; create it or fix flash.path`,
      );
    }
  } else if (!info.isFile) {
    throw new LinkdError(
      Code.FLASH_MISSING,
      `Cannot open flash ${path}: it is not a regular file, and this build drives emulated parts only; point flash.path at a file`,
    );
  }
  // Lock first, read after: a second linkd waits for the lock and then sees what the first wrote.
  let lock: Deno.FsFile;
  try {
    lock = Deno.openSync(path, { read: true, write: true, create: true });
  } catch (e) {
    throw new LinkdError(Code.FLASH_IO, `Cannot open flash ${path}: ${(e as Error).name}`);
  }
  return { otp, lock };
}
