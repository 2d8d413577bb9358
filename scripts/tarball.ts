/**
 * The build's reproducible tar.gz (build.ts: the payload and the root-filesystem overlay): the
 * same files give the same bytes on any machine and at any time. GNU tar with entries sorted by
 * name, every mtime SOURCE_DATE_EPOCH (or 0), owner and group 0 by number, and `gzip -n` (no
 * name, no time in the gzip header). Modes are the files' own: the caller sets them.
 */

/** Writes `out` from `entries` (names relative to `dir`; folders are taken whole). */
export async function reproducibleTar(
  dir: string,
  entries: string[],
  out: string,
  sourceDateEpoch: string,
): Promise<void> {
  const r = await new Deno.Command("tar", {
    args: [
      "--sort=name",
      `--mtime=@${sourceDateEpoch}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=gnu",
      "--use-compress-program=gzip -n",
      "-C",
      dir,
      "-cf",
      out,
      ...[...entries].sort(),
    ],
    env: { LC_ALL: "C" },
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e: Error) => ({
    success: false,
    stderr: new TextEncoder().encode(e.message),
  }));
  if (!r.success) {
    throw new Error(`Cannot write ${out}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
}
