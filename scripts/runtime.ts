/**
 * How the firmware runs linkd's bundle on Deno: the flags of the payload's launcher and of
 * `deno compile` (build.ts), which the boot and memory benches use too, so they measure what
 * ships.
 */

/**
 * The permissions linkd needs: flash, OTP and config files (read, write), LINKD_CONFIG and
 * systemd's variables (env), the broker and the auth server (net), and libc's sendto() for
 * sd_notify (ffi: src/daemon/sd_notify.ts explains why). No run, sys or import.
 */
export const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-ffi",
];

/** Nothing is fetched, resolved or prompted at run time: the bundle is the whole program. */
export const OFFLINE = ["--no-prompt", "--no-config", "--no-lock", "--no-remote", "--no-npm"];

/**
 * V8 settings for a speaker, measured with `deno task bench` (boot, and memory after 1000
 * refreshes):
 * - `--min-semi-space-size=2`, `--max-semi-space-size=2` (MB): a fixed young generation. V8
 *   grows it up to 16 MB per semi-space under allocation bursts, where linkd's live data is a
 *   few hundred KB: a cap of 1 MB took the peak from 80 to 69 MB. At 1 MB the boot ran two
 *   young collections before its first token (3.4 ms, the main thread waiting on V8's helper
 *   threads); at 2 MB it runs none, boot 87 → 82 ms, and the peak memory is the same.
 * - `--lite-mode`: no optimizing compilers (their compile zones are the next largest peaks)
 *   and lazily allocated feedback. 69 → 55 MB peak. linkd's hot code is a token refresh an
 *   hour and a few seals; `linkd provision` and `status` took no longer under it (147 vs
 *   151 ms and 89 vs 107 ms per run here).
 * - `--expose-gc`: the daemon collects after each token refresh (src/daemon/gc.ts). 52 → 47 MB.
 */
export const V8_FLAGS: string[] = [
  "--min-semi-space-size=2",
  "--max-semi-space-size=2",
  "--lite-mode",
  "--expose-gc",
];

/** `--v8-flags=...` for `deno run` and `deno compile` (none when V8_FLAGS is empty). */
export function v8FlagArgs(): string[] {
  return V8_FLAGS.length > 0 ? [`--v8-flags=${V8_FLAGS.join(",")}`] : [];
}

/**
 * `deno run` arguments before the bundle's path (the launcher adds `--cached-only`).
 * `allowAll` swaps the permissions for `-A` (a bench that reads /proc/self/status needs it).
 */
export function runArgs(o: { allowAll?: boolean } = {}): string[] {
  return [
    ...OFFLINE,
    ...(o.allowAll ? ["-A"] : PERMISSIONS),
    ...v8FlagArgs(),
  ];
}
