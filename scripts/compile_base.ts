/**
 * Whether build.ts can `deno compile` a target, and the one line that says so: `deno compile
 * --target <triple>` appends the program to a "denort" runtime base, which it takes from env
 * DENORT_BIN (a denort binary; the build uses it for the host's own architecture only) or from
 * `$DENO_DIR/dl/release/v<version>/denort-<triple>.zip`, else it would download one (which the
 * build never lets it try). Without a base the build makes the payload instead, and the line says
 * why, naming the exact path it looked in.
 */
import { exists } from "./tool.ts";

/** What compileBase() needs of a target. */
export interface CompileTarget {
  arch: string;
  triple: string;
}

/**
 * Where `deno compile` would find a runtime base for `t`: the environment it needs, and the
 * build's line saying so; or, when there is none, `env` null and the line saying why the payload
 * is built instead. `env` is the build's environment, `hostArch` the machine's (null: not Linux).
 */
export function compileBase(
  t: CompileTarget,
  version: string,
  env: Record<string, string | undefined>,
  hostArch: string | null,
  fileExists: (path: string) => boolean = exists,
): { env: Record<string, string> | null; line: string } {
  const denortBin = env["DENORT_BIN"];
  if (denortBin && t.arch === hostArch) {
    if (!fileExists(denortBin)) {
      throw new Error(`Cannot use DENORT_BIN=${denortBin}: it does not exist; unset it or fix it`);
    }
    return {
      env: { DENORT_BIN: denortBin },
      line: `${t.arch}: deno compile, DENORT_BIN=${denortBin}`,
    };
  }
  // As Deno itself: DENO_DIR when set (CI sets an empty one), else the user-level cache.
  const dir = env["DENO_DIR"] || `${env["XDG_CACHE_HOME"] || `${env["HOME"] ?? ""}/.cache`}/deno`;
  const zip = `${dir}/dl/release/v${version}/denort-${t.triple}.zip`;
  if (fileExists(zip)) return { env: { DENO_DIR: dir }, line: `${t.arch}: deno compile, ${zip}` };
  const bin = !denortBin
    ? "no DENORT_BIN"
    : `DENORT_BIN serves only the host's architecture (${hostArch ?? "not Linux"})`;
  return {
    env: null,
    line: `${t.arch}: the payload (runtime, bundle, launcher), not deno compile: ${bin}, ` +
      `and no ${zip}`,
  };
}
