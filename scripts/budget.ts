/**
 * What ships against the storage it must fit (build.ts): the root-filesystem overlay's size as the
 * speaker's rootfs stores it, and linkd's budget there, both from firmware/storage.json (the one
 * home of the layout's numbers; firmware/partitions.md explains them).
 *
 * The rootfs is squashfs with xz: each file is cut into blocks (`rootfs.blockSize`, 128 KiB, the
 * mksquashfs default) compressed one by one, so a block never draws on another. `xz
 * --block-size` does exactly that, and the sum over the files is what squashfs stores within
 * 0.1%: `mksquashfs -comp xz -b 131072` (squashfs-tools 4.5.1) of the unpacked overlays made
 * images 0.06% larger (32813056 bytes against 32791936 for aarch64, 35987456 against 35966776
 * for x86_64): its inode tables and block index instead of xz's headers. mksquashfs is not
 * needed to build.
 *
 * The runtime is the same for every build of a Deno version, so each file's size is kept in the
 * build cache by the file's SHA-256 and the xz settings and version; compressing 85 MB again
 * would take half a minute.
 */
import { createHash } from "node:crypto";

export interface Budget {
  /** Bytes of the rootfs linkd's files may take, compressed. */
  bytes: number;
  blockSize: number;
  xzPreset: number;
  /** The file it comes from, for messages. */
  home: string;
}

/** linkd's rootfs budget and the rootfs's compression, from a storage.json. */
export function readBudget(path: string): Budget {
  const s = JSON.parse(Deno.readTextFileSync(path)) as {
    rootfs?: { compression?: string; xzPreset?: number; blockSize?: number; linkdBudget?: number };
  };
  const r = s.rootfs ?? {};
  const whole = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n > 0;
  if (r.compression !== "xz" || !whole(r.blockSize) || !whole(r.linkdBudget)) {
    throw new Error(
      `Cannot read linkd's rootfs budget from ${path}: rootfs needs compression "xz", ` +
        `blockSize and linkdBudget (bytes); see firmware/partitions.md`,
    );
  }
  return { bytes: r.linkdBudget!, blockSize: r.blockSize!, xzPreset: r.xzPreset ?? 6, home: path };
}

/** `n` bytes in MiB with one decimal. */
export function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** How the rootfs stores files, in words. */
export function storedAs(b: Budget): string {
  return `squashfs xz, ${b.blockSize / 1024} KiB blocks`;
}

async function xz(args: string[]): Promise<Uint8Array> {
  const r = await new Deno.Command("xz", { args, stdout: "piped", stderr: "piped" }).output()
    .catch((e: Error) => {
      throw new Error(`Cannot measure the rootfs size: xz: ${e.message}; install xz-utils`);
    });
  if (!r.success) {
    throw new Error(`Cannot measure the rootfs size: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return r.stdout;
}

/**
 * The bytes `files` take in the rootfs, compressed as `b` says. Sizes already measured are read
 * from (and new ones added to) `${cacheDir}/rootfs-sizes.json`.
 */
export async function storedSize(files: string[], b: Budget, cacheDir: string): Promise<number> {
  const version = new TextDecoder().decode(await xz(["--version"])).split("\n")[0]!.trim();
  const settings = `${version} -${b.xzPreset} --block-size=${b.blockSize}`;
  const cachePath = `${cacheDir}/rootfs-sizes.json`;
  let cache: Record<string, number> = {};
  try {
    cache = JSON.parse(Deno.readTextFileSync(cachePath));
  } catch { /* none yet, or unreadable: measure again */ }
  let total = 0;
  let added = false;
  for (const file of files) {
    const sha = createHash("sha256").update(Deno.readFileSync(file)).digest("hex");
    const key = `${sha} ${settings}`;
    let size = cache[key];
    if (typeof size !== "number") {
      const out = await xz([`-${b.xzPreset}`, "-T1", `--block-size=${b.blockSize}`, "-c", file]);
      cache[key] = size = out.length;
      added = true;
    }
    total += size;
  }
  if (added) {
    Deno.mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cachePath}.${Deno.pid}`;
    Deno.writeTextFileSync(tmp, JSON.stringify(cache, null, 1));
    Deno.renameSync(tmp, cachePath);
  }
  return total;
}

/** The build's line for `arch`: what it takes and of what budget; or its failure when over. */
export function budgetLine(arch: string, size: number, b: Budget): { ok: boolean; line: string } {
  const stored = `${mib(size)} (${size} bytes, ${storedAs(b)})`;
  const budget = `${mib(b.bytes)} (${b.bytes} bytes, rootfs.linkdBudget in ${b.home})`;
  if (size <= b.bytes) {
    return {
      ok: true,
      line: `${arch}: the overlay takes ${stored} of linkd's rootfs budget ${budget}`,
    };
  }
  return {
    ok: false,
    line: `Cannot fit the ${arch} overlay in the rootfs: it takes ${stored}, over linkd's budget ` +
      `${budget}; ship less or change the layout (firmware/partitions.md)`,
  };
}
