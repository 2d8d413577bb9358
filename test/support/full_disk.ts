/**
 * A real full disk for tests: a tiny tmpfs mounted on a temporary folder (`mount -t tmpfs -o
 * size=...`), so that a write fails with ENOSPC from the kernel, as on a device whose data
 * partition is full. Mounting needs root (CAP_SYS_ADMIN); where it is refused, `haveTmpfs()`
 * says so and the tests that need it are skipped with that reason printed.
 */

let probed: string | null | undefined;

/** Why a tmpfs cannot be mounted here, or null when it can (probed once). */
export function tmpfsUnavailable(): string | null {
  if (probed !== undefined) return probed;
  const at = Deno.makeTempDirSync({ prefix: "linkd-tmpfs-probe-" });
  try {
    const m = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=16k", "tmpfs", at],
      stderr: "piped",
    }).outputSync();
    if (!m.success) {
      probed = `cannot mount a tmpfs (${new TextDecoder().decode(m.stderr).trim() || m.code})`;
    } else {
      new Deno.Command("umount", { args: [at] }).outputSync();
      probed = null;
    }
  } catch (e) {
    probed = `cannot run mount (${(e as Error).name})`;
  } finally {
    Deno.removeSync(at, { recursive: true });
  }
  return probed;
}

type Register = (name: string, fn: () => void | Promise<void>) => void;

/** uvu's `test` when a tmpfs can be mounted; otherwise its `test.skip`, saying why. */
export function ifTmpfs(test: Register & { skip: Register }): Register {
  const why = tmpfsUnavailable();
  if (why === null) return test;
  console.warn(`skipping a full-disk test: ${why} (needs root)`);
  return test.skip;
}

/**
 * Runs `fn` with the path of a fresh tmpfs of `kib` KiB (default 64), unmounted afterwards.
 * tmpfs counts whole 4 KiB pages: a 64 KiB one holds 16 pages of file data.
 */
export async function fullDisk<T>(fn: (mnt: string) => Promise<T>, kib = 64): Promise<T> {
  const why = tmpfsUnavailable();
  if (why !== null) throw new Error(`no tmpfs: ${why}`);
  const at = Deno.makeTempDirSync({ prefix: "linkd-full-disk-" });
  const m = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${kib}k,mode=0755`, "tmpfs", at],
  }).output();
  if (!m.success) throw new Error(`mount of a ${kib} KiB tmpfs failed`);
  try {
    return await fn(at);
  } finally {
    await new Deno.Command("umount", { args: ["-l", at] }).output();
    Deno.removeSync(at, { recursive: true });
  }
}
