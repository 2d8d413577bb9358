/**
 * An emulated SPI NOR part (W25Q128JV class) behind the `FlashDriver` interface, in memory or
 * backed by a regular file. It behaves like the part where that matters to a store that must
 * survive power loss: erased bytes read 0xFF, programming only clears bits, programming an
 * unerased byte or a misaligned range is refused, erases are counted per sector, sectors wear
 * out, and power can be cut during any program or erase, cleanly or leaving it torn.
 *
 * One deliberate difference: a real page program wraps at the page end; the emulator refuses a
 * program that crosses a page boundary (FLASH_ALIGN), so a store bug shows up at once.
 */

import { dirname } from "../paths.ts";
import { mulberry32 } from "../prng.ts";
import { Code, LinkdError } from "../errors.ts";
import {
  DEFAULT_GEOMETRY,
  type FlashDriver,
  type FlashGeometry,
  geometryProblem,
} from "./driver.ts";

/** Options of every `NorEmulator` constructor. */
export interface NorOptions {
  /** Erase cycles each sector survives; default 100,000 (the W25Q128JV minimum). */
  readonly endurance?: number;
  /**
   * Source of randomness in [0, 1) for torn operations. Default: a mulberry32 generator seeded
   * with `seed`, so the same seed and the same calls give byte-identical torn images.
   */
  readonly random?: () => number;
  /** Seed of the default generator; default 1. Ignored when `random` is given. */
  readonly seed?: number;
}

/**
 * A power cut armed with `armPowerCut`: after `afterOps` more programs or erases complete, the
 * next one fails. `torn: false` leaves that operation without any effect; `torn: true` leaves it
 * half done (see `armPowerCut`).
 */
export interface PowerCut {
  readonly afterOps: number;
  readonly torn: boolean;
}

/** Counts of completed operations since construction (refused and cut operations not included). */
export interface NorStats {
  /** Programs plus erases: the steps a power-cut test walks through. */
  readonly ops: number;
  readonly programs: number;
  readonly erases: number;
  readonly bytesProgrammed: number;
  readonly bytesRead: number;
}

const DEFAULT_ENDURANCE = 100_000;
const DEFAULT_SEED = 1;

/** FLASH_GEOMETRY for an image or file whose length (`length` bytes) is not the geometry's. */
export function wrongSize(what: string, length: number | string, size: number): LinkdError {
  return new LinkdError(
    Code.FLASH_GEOMETRY,
    `Cannot ${what}: it is ${length} bytes but the geometry size is ${size} bytes`,
  );
}

/** An emulated SPI NOR part. Build one with `memory`, `fromImage` or `openFile`. */
export class NorEmulator implements FlashDriver {
  readonly geometry: FlashGeometry;
  readonly #data: Uint8Array;
  readonly #erases: number[];
  readonly #endurance: number;
  readonly #random: () => number;
  readonly #file: Deno.FsFile | null;
  readonly #path: string;
  #stats = { ops: 0, programs: 0, erases: 0, bytesProgrammed: 0, bytesRead: 0 };
  /** The value of `#stats.ops` at which the armed cut fires, or null. */
  #cutAt: number | null = null;
  #cutTorn = false;
  #dead = false;
  #closed = false;

  private constructor(
    geometry: FlashGeometry,
    data: Uint8Array,
    options: NorOptions,
    file: Deno.FsFile | null,
    path: string,
  ) {
    this.geometry = geometry;
    this.#data = data;
    this.#erases = new Array<number>(geometry.size / geometry.eraseSize).fill(0);
    this.#endurance = options.endurance ?? DEFAULT_ENDURANCE;
    this.#random = options.random ?? mulberry32(options.seed ?? DEFAULT_SEED);
    this.#file = file;
    this.#path = path;
  }

  /** An erased (all 0xFF) part in memory; missing geometry fields come from DEFAULT_GEOMETRY. */
  static memory(geometry: Partial<FlashGeometry> = {}, options: NorOptions = {}): NorEmulator {
    const g = checkGeometry({ ...DEFAULT_GEOMETRY, ...geometry });
    checkOptions(options);
    return new NorEmulator(g, new Uint8Array(g.size).fill(0xff), options, null, "");
  }

  /**
   * A part in memory holding a copy of `image` (for example `image()` of a part that lost
   * power: the reboot). Erase counters start at zero.
   */
  static fromImage(
    image: Uint8Array,
    geometry: FlashGeometry,
    options: NorOptions = {},
  ): NorEmulator {
    const g = checkGeometry(geometry);
    checkOptions(options);
    if (image.length !== g.size) {
      throw wrongSize("load flash image", image.length, g.size);
    }
    return new NorEmulator(g, image.slice(), options, null, "");
  }

  /**
   * A part backed by the regular file at `path`, created erased (exactly `size` bytes of 0xFF)
   * when missing. Every program and erase is written through to the file at its offset; `sync`
   * makes them durable. Errors: FLASH_MISSING when the folder does not exist, FLASH_GEOMETRY when
   * the file's length is not `size` or the geometry is invalid, FLASH_IO for other I/O failures.
   */
  static openFile(path: string, geometry: FlashGeometry, options: NorOptions = {}): NorEmulator {
    const g = checkGeometry(geometry);
    checkOptions(options);
    const file = openOrCreate(path, g.size);
    try {
      const info = file.statSync();
      if (!info.isFile) {
        throw new LinkdError(Code.FLASH_IO, `Cannot open flash file ${path}: not a regular file`);
      }
      if (info.size !== g.size) {
        throw wrongSize(`open flash file ${path}`, info.size, g.size);
      }
      const data = new Uint8Array(g.size);
      readFully(file, data, path);
      return new NorEmulator(g, data, options, file, path);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Completed operations so far (a copy). */
  get stats(): NorStats {
    return { ...this.#stats };
  }

  /** True once an armed power cut has fired: every later call throws FLASH_POWER_LOSS. */
  get powerLost(): boolean {
    return this.#dead;
  }

  /** How many times sector `sector` has been erased, torn erases included. */
  eraseCount(sector: number): number {
    const n = this.#erases[sector];
    if (n === undefined) {
      throw new LinkdError(
        Code.FLASH_RANGE,
        `Cannot count erases of sector ${sector}: ${this.#sectorRange()}`,
      );
    }
    return n;
  }

  /** Erase counts of every sector, in sector order (a copy). */
  eraseCounts(): number[] {
    return this.#erases.slice();
  }

  /** A copy of the current contents; works after a power loss and after `close`. */
  image(): Uint8Array {
    return this.#data.slice();
  }

  /**
   * Arms a power cut, or disarms it with null. Once `afterOps` programs or erases have completed
   * since arming, the next program or erase that passes its checks fails during the operation
   * (`afterOps: 0` fails the very next one):
   * - `torn: false`: the operation has no effect at all;
   * - `torn: true`: a program leaves a random prefix of its bytes programmed and the next byte
   *   with a random subset of the bits it would clear; an erase leaves its sector undefined
   *   (a prefix erased, random bytes erased, all 0x00, or garbage) and counts as an erase cycle.
   * Either way it throws FLASH_POWER_LOSS, and every later read, program, erase and sync throws
   * FLASH_POWER_LOSS too: build a new emulator from `image()` to reboot. A file-backed part also
   * gets the torn state written to its file.
   */
  armPowerCut(cut: PowerCut | null): void {
    if (cut === null) {
      this.#cutAt = null;
      return;
    }
    if (!Number.isSafeInteger(cut.afterOps) || cut.afterOps < 0) {
      throw new RangeError(`Cannot arm a power cut after ${cut.afterOps} operations: not a count`);
    }
    this.#cutAt = this.#stats.ops + cut.afterOps;
    this.#cutTorn = cut.torn;
  }

  read(offset: number, length: number): Uint8Array {
    this.#alive(() => `Cannot read ${length} bytes at ${hex(offset)}`);
    if (!inRange(offset, length, this.geometry.size)) {
      throw new LinkdError(
        Code.FLASH_RANGE,
        `Cannot read ${length} bytes at ${hex(offset)}: the flash ends at ${
          hex(this.geometry.size)
        }`,
      );
    }
    this.#stats.bytesRead += length;
    return this.#data.slice(offset, offset + length);
  }

  program(offset: number, data: Uint8Array): void {
    const { size, pageSize, writeSize, eraseSize } = this.geometry;
    const length = data.length;
    const what = () => `Cannot program ${length} bytes at ${hex(offset)}`;
    this.#alive(what);
    if (!inRange(offset, length, size)) {
      throw new LinkdError(Code.FLASH_RANGE, `${what()}: the flash ends at ${hex(size)}`);
    }
    if (length === 0) throw new LinkdError(Code.FLASH_ALIGN, `${what()}: nothing to program`);
    if (offset % writeSize !== 0) {
      throw new LinkdError(
        Code.FLASH_ALIGN,
        `${what()}: offset is not a multiple of the write size ${writeSize}`,
      );
    }
    if (length % writeSize !== 0) {
      throw new LinkdError(
        Code.FLASH_ALIGN,
        `${what()}: length is not a multiple of the write size ${writeSize}`,
      );
    }
    const pageEnd = (Math.floor(offset / pageSize) + 1) * pageSize;
    if (offset + length > pageEnd) {
      throw new LinkdError(
        Code.FLASH_ALIGN,
        `${what()}: crosses the page boundary at ${hex(pageEnd)}`,
      );
    }
    const sector = Math.floor(offset / eraseSize);
    this.#checkWear(sector, () => `${what()}: sector ${sector}`);
    for (let i = 0; i < length; i++) {
      if (this.#data[offset + i] !== 0xff) {
        throw new LinkdError(
          Code.FLASH_NOT_ERASED,
          `${what()}: the byte at ${hex(offset + i)} is not erased`,
        );
      }
    }
    if (this.#cutFires()) {
      if (this.#cutTorn) this.#commit(offset, this.#tornProgram(offset, data));
      throw new LinkdError(Code.FLASH_POWER_LOSS, `${what()}: power was lost during the program`);
    }
    this.#commit(offset, data.slice());
    this.#stats.programs++;
    this.#stats.ops++;
    this.#stats.bytesProgrammed += length;
  }

  erase(sector: number): void {
    const { eraseSize } = this.geometry;
    const what = () => `Cannot erase sector ${sector}`;
    this.#alive(what);
    if (!Number.isInteger(sector) || sector < 0 || sector >= this.#erases.length) {
      throw new LinkdError(Code.FLASH_RANGE, `${what()}: ${this.#sectorRange()}`);
    }
    this.#checkWear(sector, () => `${what()}: it`);
    const offset = sector * eraseSize;
    if (this.#cutFires()) {
      if (this.#cutTorn) {
        this.#erases[sector]!++;
        this.#commit(offset, this.#tornErase(offset));
      }
      throw new LinkdError(Code.FLASH_POWER_LOSS, `${what()}: power was lost during the erase`);
    }
    this.#commit(offset, new Uint8Array(eraseSize).fill(0xff));
    this.#erases[sector]!++;
    this.#stats.erases++;
    this.#stats.ops++;
  }

  sync(): void {
    this.#alive(() => "Cannot sync the flash");
    if (this.#file === null) return;
    try {
      this.#file.syncDataSync();
    } catch (e) {
      throw ioError(`Cannot sync flash file ${this.#path}`, e);
    }
  }

  /** Closes the backing file. Later reads, programs, erases and syncs throw FLASH_IO. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#file === null) return;
    try {
      this.#file.close();
    } catch (e) {
      throw ioError(`Cannot close flash file ${this.#path}`, e);
    }
  }

  #alive(what: () => string): void {
    if (this.#dead) {
      throw new LinkdError(
        Code.FLASH_POWER_LOSS,
        `${what()}: the flash lost power and must be rebuilt from its image`,
      );
    }
    if (this.#closed) throw new LinkdError(Code.FLASH_IO, `${what()}: the flash is closed`);
  }

  #checkWear(sector: number, what: () => string): void {
    const n = this.#erases[sector]!;
    if (n >= this.#endurance) {
      throw new LinkdError(Code.FLASH_WORN_OUT, `${what()} has worn out after ${n} erase cycles`);
    }
  }

  #sectorRange(): string {
    return `the flash has ${this.#erases.length} sectors (0 to ${this.#erases.length - 1})`;
  }

  /** True when the armed cut fires now; the device is then dead. */
  #cutFires(): boolean {
    if (this.#cutAt === null || this.#stats.ops < this.#cutAt) return false;
    this.#cutAt = null;
    this.#dead = true;
    return true;
  }

  /** An integer in [0, n). */
  #pick(n: number): number {
    return Math.min(n - 1, Math.floor(this.#random() * n));
  }

  /**
   * What a program cut short leaves: a prefix of `data`, then one byte with a random subset of
   * its cleared bits, then the bytes as they were (erased). Draws twice: prefix, then bit mask.
   */
  #tornProgram(offset: number, data: Uint8Array): Uint8Array {
    const out = this.#data.slice(offset, offset + data.length);
    const k = this.#pick(data.length);
    out.set(data.subarray(0, k));
    const clears = ~data[k]! & 0xff;
    out[k] = out[k]! & ~(clears & this.#pick(256)) & 0xff;
    return out;
  }

  /** What an erase cut short leaves in its sector: one of four undefined states, at random. */
  #tornErase(offset: number): Uint8Array {
    const n = this.geometry.eraseSize;
    const out = this.#data.slice(offset, offset + n);
    switch (this.#pick(4)) {
      case 0: // erased up to a point, the rest as before
        out.fill(0xff, 0, this.#pick(n + 1));
        break;
      case 1: // some bytes erased
        for (let i = 0; i < n; i++) if (this.#pick(2) === 1) out[i] = 0xff;
        break;
      case 2: // the pre-program phase: every bit cleared
        out.fill(0);
        break;
      default: // garbage
        for (let i = 0; i < n; i++) out[i] = this.#pick(256);
    }
    return out;
  }

  /** Writes `bytes` at `offset` to the file (when there is one), then to memory. */
  #commit(offset: number, bytes: Uint8Array): void {
    if (this.#file !== null) {
      try {
        this.#file.seekSync(offset, Deno.SeekMode.Start);
        for (let done = 0; done < bytes.length;) {
          done += this.#file.writeSync(bytes.subarray(done));
        }
      } catch (e) {
        throw ioError(`Cannot write ${bytes.length} bytes at ${hex(offset)} to ${this.#path}`, e);
      }
    }
    this.#data.set(bytes, offset);
  }
}

function hex(n: number): string {
  return Number.isSafeInteger(n) && n >= 0 ? `0x${n.toString(16)}` : String(n);
}

function inRange(offset: number, length: number, size: number): boolean {
  return Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 &&
    length >= 0 && offset + length <= size;
}

function checkGeometry(g: FlashGeometry): FlashGeometry {
  const problem = geometryProblem(g);
  if (problem !== null) {
    throw new LinkdError(Code.FLASH_GEOMETRY, `Cannot use flash geometry: ${problem}`);
  }
  return Object.freeze({
    size: g.size,
    eraseSize: g.eraseSize,
    pageSize: g.pageSize,
    writeSize: g.writeSize,
  });
}

function checkOptions(o: NorOptions): void {
  if (o.endurance !== undefined && (!Number.isSafeInteger(o.endurance) || o.endurance < 1)) {
    throw new RangeError(`Cannot emulate an endurance of ${o.endurance}: not a positive count`);
  }
  if (o.seed !== undefined && !Number.isFinite(o.seed)) {
    throw new RangeError(`Cannot seed the emulator with ${o.seed}: not a number`);
  }
}

function ioError(action: string, e: unknown): LinkdError {
  const why = e instanceof Error ? e.message : String(e);
  return new LinkdError(Code.FLASH_IO, `${action}: ${why.split("\n")[0]}`, { cause: e });
}

/** Opens `path` read-write, creating it erased when missing. */
function openOrCreate(path: string, size: number): Deno.FsFile {
  for (let attempt = 0;; attempt++) {
    try {
      return Deno.openSync(path, { read: true, write: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound) || attempt > 0) {
        throw ioError(`Cannot open flash file ${path}`, e);
      }
    }
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, createNew: true });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) continue; // created meanwhile: open it
      if (e instanceof Deno.errors.NotFound) {
        throw new LinkdError(
          Code.FLASH_MISSING,
          `Cannot create flash file ${path}: the folder ${dirname(path)} does not exist`,
          { cause: e },
        );
      }
      throw ioError(`Cannot create flash file ${path}`, e);
    }
    try {
      const erased = new Uint8Array(Math.min(size, 1 << 16)).fill(0xff);
      for (let done = 0; done < size;) {
        done += file.writeSync(erased.subarray(0, Math.min(erased.length, size - done)));
      }
      file.syncDataSync();
      file.seekSync(0, Deno.SeekMode.Start);
    } catch (e) {
      file.close();
      throw ioError(`Cannot create flash file ${path}`, e);
    }
    return file;
  }
}

function readFully(file: Deno.FsFile, into: Uint8Array, path: string): void {
  try {
    file.seekSync(0, Deno.SeekMode.Start);
    for (let done = 0; done < into.length;) {
      const n = file.readSync(into.subarray(done));
      if (n === null) {
        throw new LinkdError(
          Code.FLASH_IO,
          `Cannot read flash file ${path}: it ended at ${done} bytes`,
        );
      }
      done += n;
    }
  } catch (e) {
    if (e instanceof LinkdError) throw e;
    throw ioError(`Cannot read flash file ${path}`, e);
  }
}
