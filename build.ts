/**
 * `deno task build`: the program and its firmware artifacts, under target/.
 *
 *   target/linkd.js                      src/main.ts bundled and minified (`deno bundle`), with
 *                                        no `node:` import (scripts/bundle.ts says why)
 *
 * then, for each SoC target (x86_64 and aarch64 Linux, glibc), one of:
 *
 *   target/linkd-<arch>-linux            `deno compile` of the bundle, when a Deno runtime base
 *                                        (denort) for that target is available (see below)
 *   target/firmware/<arch>/              otherwise (the normal case on this machine) the payload:
 *     deno                               the Deno runtime from the npm platform package
 *     linkd.js                           the bundle
 *     linkd                              POSIX launcher: `deno run ... linkd.js "$@"`
 *   target/linkd-<version>-<arch>.tar.gz that payload, made reproducibly (sorted entries, mtime
 *                                        SOURCE_DATE_EPOCH or 0, uid/gid 0, gzip -n)
 *
 * Each artifact's size and SHA-256 is printed, one line each: `PATH  N bytes  sha256 HEX`.
 * Same inputs give the same bytes.
 *
 * Runtimes: x86_64 comes from node_modules/@deno/linux-x64-glibc (installed with the `deno` npm
 * package); aarch64 is fetched once with `npm pack @deno/linux-arm64-glibc@<version>` into
 * target/cache/ (env LINKD_BUILD_CACHE overrides that folder) and reused from there. The version
 * is the `deno` devDependency of package.json, so the runtime on the device is the one tested.
 * npm's fetch retries are few and short unless the environment sets them, and always consistent
 * (npm refuses a fetch-retry-mintimeout above fetch-retry-maxtimeout, but only when it really
 * fetches, so a warm npm cache hides a bad pair); a failed fetch shows npm's own error lines.
 *
 * `deno compile` and where it finds a base: `deno compile --target <triple>` appends the program
 * to a "denort" runtime, which it takes from env DENORT_BIN (a denort binary; used here for the
 * host's own architecture only) or from `$DENO_DIR/dl/release/v<version>/denort-<triple>.zip`
 * (DENO_DIR defaults to ~/.cache/deno), and otherwise downloads from dl.deno.land — which is not
 * reachable here, so the build never lets it try. To build compiled binaries on a machine with
 * the bases, either `DENORT_BIN=/path/to/denort deno task build` (host architecture) or copy
 * `denort-x86_64-unknown-linux-gnu.zip` / `denort-aarch64-unknown-linux-gnu.zip` of the same
 * Deno version into `$DENO_DIR/dl/release/v<version>/`. What compiling changes: one
 * self-contained executable per target instead of the three-file payload; the permissions are
 * baked in at compile time (same flags as the launcher), there is no launcher and no DENO_DIR
 * (nothing is resolved or cached at run time), and the file is smaller (denort lacks the CLI's
 * tooling). It is not reproducible across Deno versions, but is for the same base and inputs.
 */
import { createHash } from "node:crypto";
import { bundle as bundleProgram } from "./scripts/bundle.ts";
import { PERMISSIONS, runArgs, v8FlagArgs } from "./scripts/runtime.ts";
import { VERSION } from "./src/version.ts";

const root = new URL(".", import.meta.url).pathname;
const target = `${root}target`;
const cacheDir = Deno.env.get("LINKD_BUILD_CACHE") ?? `${target}/cache`;
const sourceDateEpoch = Deno.env.get("SOURCE_DATE_EPOCH") ?? "0";

interface Target {
  arch: "x86_64" | "aarch64";
  triple: string;
  npmPackage: string;
}

const TARGETS: Target[] = [
  { arch: "x86_64", triple: "x86_64-unknown-linux-gnu", npmPackage: "@deno/linux-x64-glibc" },
  { arch: "aarch64", triple: "aarch64-unknown-linux-gnu", npmPackage: "@deno/linux-arm64-glibc" },
];

function fail(message: string): never {
  console.error(`build: ${message}`);
  Deno.exit(1);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

const quietEnv = { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" };

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<{ ok: boolean; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env: { ...quietEnv, ...opts.env },
      clearEnv: opts.clearEnv ?? false,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    return { ok: out.success, stderr };
  } catch (e) {
    return { ok: false, stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** The file `npm pack` writes for `name@version`: `@scope/pkg` gives `scope-pkg-<version>.tgz`. */
export function tarballName(name: string, version: string): string {
  return `${name.replace(/^@/, "").replace("/", "-")}-${version}.tgz`;
}

/** npm's fetch retries when the environment does not set them: one retry, after 1 to 10 s. */
const NPM_FETCH_DEFAULTS = { retries: "1", retry_mintimeout: "1000", retry_maxtimeout: "10000" };

/**
 * The fetch-retry settings for one `npm pack`, as environment variables: `env`'s own (either
 * case, as npm reads them) where they are whole numbers, else NPM_FETCH_DEFAULTS, with the
 * minimum timeout never above the maximum. Both cases are set so that neither can disagree.
 */
export function npmFetchEnv(env: Record<string, string | undefined>): Record<string, string> {
  const get = (key: keyof typeof NPM_FETCH_DEFAULTS): string => {
    const v = env[`npm_config_fetch_${key}`] ?? env[`NPM_CONFIG_FETCH_${key.toUpperCase()}`];
    return v !== undefined && /^\d+$/.test(v) ? v : NPM_FETCH_DEFAULTS[key];
  };
  const max = get("retry_maxtimeout");
  const min = String(Math.min(Number(get("retry_mintimeout")), Number(max)));
  const settings = { retries: get("retries"), retry_mintimeout: min, retry_maxtimeout: max };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    out[`npm_config_fetch_${key}`] = value;
    out[`NPM_CONFIG_FETCH_${key.toUpperCase()}`] = value;
  }
  return out;
}

/** At most this many of npm's error lines go into an error, each cut to NPM_LINE_CHARS. */
const NPM_ERROR_LINES = 5;
const NPM_LINE_CHARS = 240;

/**
 * npm's own error lines in its output (`npm error ...`; `npm ERR! ...` before npm 9), in order,
 * without repeats, stack frames, dumped objects or the pointer to its log file (which lives in
 * the npm cache); at most NPM_ERROR_LINES, each cut to NPM_LINE_CHARS.
 */
export function npmErrorLines(output: string): string[] {
  const lines = output.split("\n").map((l) => l.trimEnd()).filter((l) =>
    /^npm (?:error|ERR!) [A-Za-z]/.test(l) && !l.includes("A complete log of this run")
  );
  return [...new Set(lines)].slice(0, NPM_ERROR_LINES).map((l) =>
    l.length > NPM_LINE_CHARS ? `${l.slice(0, NPM_LINE_CHARS - 1)}…` : l
  );
}

/**
 * `npm pack name@version` into `dir`; the tarball's path. `env` is added to this process's
 * environment (registry, npm cache, retries); npmFetchEnv() settles the retries. On failure the
 * error's first line names the command and each further line is one of npm's error lines
 * (npmErrorLines()), indented; else the last line npm printed.
 */
export async function npmPack(
  name: string,
  version: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<string> {
  const spec = `${name}@${version}`;
  const fetchEnv = npmFetchEnv({ ...Deno.env.toObject(), ...env });
  const r = await run("npm", ["pack", spec, "--pack-destination", dir, "--loglevel=error"], {
    env: { ...env, ...fetchEnv },
  });
  const tgz = `${dir}/${tarballName(name, version)}`;
  if (r.ok && exists(tgz)) return tgz;
  const npmLines = npmErrorLines(r.stderr);
  const last = r.stderr.trim().split("\n").pop()?.trim();
  const why = npmLines.length > 0
    ? npmLines
    : [r.ok ? `npm wrote no ${tarballName(name, version)}` : last || "npm printed nothing"];
  throw new Error([`\`npm pack ${spec}\` failed`, ...why.map((l) => `  ${l}`)].join("\n"));
}

/** The Deno version the firmware ships: package.json's `deno` devDependency. */
function denoVersion(): string {
  const pkg = JSON.parse(Deno.readTextFileSync(`${root}package.json`)) as {
    devDependencies?: Record<string, string>;
  };
  const v = pkg.devDependencies?.["deno"];
  if (!v || !/^\d+\.\d+\.\d+$/.test(v)) fail("package.json: devDependencies.deno is not X.Y.Z");
  return v;
}

/** Where `deno compile` would find a runtime base for `t`, or null (then: payload). */
function denortFor(t: Target, version: string): { env: Record<string, string> } | null {
  const hostArch = Deno.build.os === "linux" ? Deno.build.arch : null;
  const denortBin = Deno.env.get("DENORT_BIN");
  if (denortBin && t.arch === hostArch) {
    if (!exists(denortBin)) fail(`DENORT_BIN=${denortBin} does not exist`);
    return { env: { DENORT_BIN: denortBin } };
  }
  // As Deno itself: DENO_DIR when set (CI sets an empty one), else the user-level cache.
  const home = Deno.env.get("HOME") ?? "";
  const dir = Deno.env.get("DENO_DIR") ||
    `${Deno.env.get("XDG_CACHE_HOME") || `${home}/.cache`}/deno`;
  if (exists(`${dir}/dl/release/v${version}/denort-${t.triple}.zip`)) {
    return { env: { DENO_DIR: dir } };
  }
  return null;
}

/**
 * The bytes of the `deno` binary of `t`'s npm platform package at `version`. Throws when it
 * cannot fetch or unpack it; its temporary folders are gone either way.
 */
async function runtimeFor(t: Target, version: string): Promise<Uint8Array> {
  const installed = `${root}node_modules/${t.npmPackage}`;
  try {
    const pkg = JSON.parse(Deno.readTextFileSync(`${installed}/package.json`)) as {
      version?: string;
    };
    if (pkg.version === version) return Deno.readFileSync(`${installed}/deno`);
  } catch { /* not installed here: fetch it */ }

  const tgzName = tarballName(t.npmPackage, version);
  const tgz = `${cacheDir}/${tgzName}`;
  if (!exists(tgz)) {
    Deno.mkdirSync(cacheDir, { recursive: true });
    const tmp = Deno.makeTempDirSync({ dir: cacheDir, prefix: ".pack-" });
    try {
      Deno.renameSync(await npmPack(t.npmPackage, version, tmp), tgz);
    } catch (e) {
      const [head, ...npmLines] = (e instanceof Error ? e.message : String(e)).split("\n");
      throw new Error(
        [
          `Cannot fetch the ${t.arch} Deno runtime: ${head}; ` +
          `check the npm registry, or put ${tgzName} in ${cacheDir}/`,
          ...npmLines,
        ].join("\n"),
      );
    } finally {
      removeIfExists(tmp);
    }
  }
  const tmp = Deno.makeTempDirSync({ dir: cacheDir, prefix: ".unpack-" });
  try {
    const r = await run("tar", ["-xzf", tgz, "-C", tmp, "package/deno"]);
    if (!r.ok) {
      throw new Error(`Cannot unpack ${tgz}: ${r.stderr.trim()} (delete it and build again)`);
    }
    return Deno.readFileSync(`${tmp}/package/deno`);
  } finally {
    removeIfExists(tmp);
  }
}

/** The launcher: runs the bundle on the runtime next to it, offline and without prompts. */
function launcher(): string {
  return `#!/bin/sh
# linkd launcher (generated by build.ts): runs linkd.js on the Deno runtime in this folder.
# DENO_DIR holds only V8's code cache (nothing is fetched: --no-remote --no-npm --cached-only).
# It must outlive a reboot, or every boot parses the whole program again: the init scripts set
# it (systemd's CacheDirectory= gives CACHE_DIRECTORY); else a folder under TMPDIR. LINKD_RUNNER,
# when set, prefixes the runtime (e.g. "qemu-aarch64-static -L /usr/aarch64-linux-gnu" to try an
# aarch64 payload on a PC).
self=$(readlink -f -- "$0" 2>/dev/null) || self=$0
here=$(dirname -- "$self")
DENO_DIR=\${DENO_DIR:-\${CACHE_DIRECTORY:-\${TMPDIR:-/tmp}/linkd-deno}}
DENO_NO_UPDATE_CHECK=1
DENO_NO_PROMPT=1
export DENO_DIR DENO_NO_UPDATE_CHECK DENO_NO_PROMPT
# shellcheck disable=SC2086
exec \${LINKD_RUNNER:-} "$here/deno" run --cached-only \\
  ${runArgs().join(" ")} "$here/linkd.js" "$@"
`;
}

/** One target's build: by `deno compile` when denort is set, else a payload with runtime. */
interface Plan {
  t: Target;
  denort: { env: Record<string, string> } | null;
  runtime?: Uint8Array;
}

/** fail() with an error's message. */
function failWith(e: unknown): never {
  fail(e instanceof Error ? e.message : String(e));
}

/** The build: the bundle, then each target's artifacts, then their sizes and digests. */
async function main(): Promise<void> {
  const built: string[] = [];

  // 1. The bundle.
  Deno.mkdirSync(target, { recursive: true });
  const bundle = `${target}/linkd.js`;
  try {
    await bundleProgram(`${root}src/main.ts`, bundle);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  built.push(bundle);

  // 2. Per target: what to build, and the runtimes the payloads need (all fetched before any
  // target's artifacts are replaced, so a failed fetch leaves the previous build whole).
  const version = denoVersion();
  const plans: Plan[] = [];
  for (const t of TARGETS) {
    const denort = denortFor(t, version);
    if (denort) plans.push({ t, denort });
    else plans.push({ t, denort, runtime: await runtimeFor(t, version).catch(failWith) });
  }

  for (const { t, denort, runtime } of plans) {
    const compiled = `${target}/linkd-${t.arch}-linux`;
    const payload = `${target}/firmware/${t.arch}`;
    const tarball = `${target}/linkd-${VERSION}-${t.arch}.tar.gz`;
    if (denort) {
      removeIfExists(payload);
      removeIfExists(tarball);
      // DENORT_BIN must not leak into a compile for another architecture.
      const env: Record<string, string> = { ...Deno.env.toObject(), ...quietEnv };
      delete env["DENORT_BIN"];
      Object.assign(env, denort.env);
      const r = await run(Deno.execPath(), [
        "compile",
        "--quiet",
        "--no-check",
        "--no-config",
        "--no-lock",
        "--no-remote",
        "--no-npm",
        ...PERMISSIONS,
        ...v8FlagArgs(),
        "--target",
        t.triple,
        "--output",
        compiled,
        bundle,
      ], { env, clearEnv: true });
      if (!r.ok) fail(`Cannot compile for ${t.triple}: ${r.stderr.trim().split("\n").pop()}`);
      built.push(compiled);
      continue;
    }
    removeIfExists(compiled);
    removeIfExists(payload);
    Deno.mkdirSync(payload, { recursive: true });
    Deno.chmodSync(payload, 0o755);
    Deno.writeFileSync(`${payload}/deno`, runtime!);
    Deno.chmodSync(`${payload}/deno`, 0o755);
    Deno.copyFileSync(bundle, `${payload}/linkd.js`);
    Deno.chmodSync(`${payload}/linkd.js`, 0o644);
    Deno.writeTextFileSync(`${payload}/linkd`, launcher());
    Deno.chmodSync(`${payload}/linkd`, 0o755);
    const r = await run("tar", [
      "--sort=name",
      `--mtime=@${sourceDateEpoch}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=gnu",
      "--use-compress-program=gzip -n",
      "-C",
      payload,
      "-cf",
      tarball,
      "deno",
      "linkd",
      "linkd.js",
    ]);
    if (!r.ok) fail(`Cannot write ${tarball}: ${r.stderr.trim()}`);
    built.push(`${payload}/deno`, `${payload}/linkd`, `${payload}/linkd.js`, tarball);
  }

  // 3. Sizes and digests.
  for (const path of built) {
    const bytes = Deno.readFileSync(path);
    const sha = createHash("sha256").update(bytes).digest("hex");
    console.log(`${path.replace(root, "")}  ${bytes.length} bytes  sha256 ${sha}`);
  }
}

if (import.meta.main) await main();
