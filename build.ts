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
 *   target/linkd-<version>-<arch>.tar.gz that payload, made reproducibly (scripts/tarball.ts:
 *                                        sorted entries, mtime SOURCE_DATE_EPOCH or 0, uid/gid
 *                                        0, gzip -n)
 *
 * and in both cases
 *
 *   target/linkd-<version>-<arch>-rootfs.tar.gz  the root-filesystem overlay, as reproducibly:
 *                                        every file where it goes on the speaker, with its mode
 *                                        (scripts/install.ts, the one install map, which
 *                                        firmware/README.md's table follows)
 *
 * Each artifact's size and SHA-256 is printed on stdout, one line each:
 * `PATH  N bytes  sha256 HEX`. Same inputs give the same bytes. On stderr, one line per target
 * says how it was built (`deno compile`, or the payload and why), and one what its overlay takes
 * in the rootfs against linkd's budget (scripts/budget.ts; the budget is
 * firmware/storage.json's, or that of the file env LINKD_STORAGE names). Over the budget the build
 * fails with one line.
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
import { launcher, PERMISSIONS, v8FlagArgs } from "./scripts/runtime.ts";
import { budgetLine, readBudget, storedSize } from "./scripts/budget.ts";
import { stageOverlay } from "./scripts/install.ts";
import { compileBase } from "./scripts/compile_base.ts";
import { reproducibleTar } from "./scripts/tarball.ts";
import { npmPack, tarballName } from "./scripts/npm_pack.ts";
import { exists, quietEnv, run } from "./scripts/tool.ts";
import { VERSION } from "./src/version.ts";

const root = new URL(".", import.meta.url).pathname;
const target = `${root}target`;
const cacheDir = Deno.env.get("LINKD_BUILD_CACHE") ?? `${target}/cache`;
const sourceDateEpoch = Deno.env.get("SOURCE_DATE_EPOCH") ?? "0";
const storage = Deno.env.get("LINKD_STORAGE") || `${root}firmware/storage.json`;

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

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
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

/** The payload's files: the runtime, the launcher, the bundle. */
const PAYLOAD = ["deno", "linkd", "linkd.js"];

/** Writes the payload into the folder `dir`; its files by name. */
function writePayload(dir: string, runtime: Uint8Array, bundle: string): Record<string, string> {
  Deno.writeFileSync(`${dir}/deno`, runtime);
  Deno.chmodSync(`${dir}/deno`, 0o755);
  Deno.writeTextFileSync(`${dir}/linkd`, launcher());
  Deno.chmodSync(`${dir}/linkd`, 0o755);
  Deno.copyFileSync(bundle, `${dir}/linkd.js`);
  Deno.chmodSync(`${dir}/linkd.js`, 0o644);
  return Object.fromEntries(PAYLOAD.map((n) => [n, `${dir}/${n}`]));
}

/** `deno compile` of the bundle for `t` into `out`, with the runtime base `baseEnv` names. */
async function compile(
  t: Target,
  baseEnv: Record<string, string>,
  bundle: string,
  out: string,
): Promise<string> {
  // DENORT_BIN must not leak into a compile for another architecture.
  const env: Record<string, string> = { ...Deno.env.toObject(), ...quietEnv };
  delete env["DENORT_BIN"];
  Object.assign(env, baseEnv);
  const r = await run(Deno.execPath(), [
    "compile",
    "--quiet",
    "--no-check",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    ...PERMISSIONS,
    // Baked in for every subcommand: the daemon's (a compiled binary is mostly its boot).
    ...v8FlagArgs({ daemon: true }),
    "--target",
    t.triple,
    "--output",
    out,
    bundle,
  ], { env, clearEnv: true });
  if (!r.ok) {
    throw new Error(`Cannot compile for ${t.triple}: ${r.stderr.trim().split("\n").pop()}`);
  }
  return out;
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
  const budget = (() => {
    try {
      return { ...readBudget(storage), home: storage.replace(root, "") };
    } catch (e) {
      failWith(e);
    }
  })();
  const hostArch = Deno.build.os === "linux" ? Deno.build.arch : null;
  const plans: Plan[] = [];
  for (const t of TARGETS) {
    let base: ReturnType<typeof compileBase>;
    try {
      base = compileBase(t, version, Deno.env.toObject(), hostArch);
    } catch (e) {
      failWith(e);
    }
    console.error(`build: ${base.line}`);
    const denort = base.env ? { env: base.env } : null;
    if (denort) plans.push({ t, denort });
    else plans.push({ t, denort, runtime: await runtimeFor(t, version).catch(failWith) });
  }

  // 3. Per target, in a folder of its own under target/: the payload (or the compiled
  // executable) and the overlay's tree, measured against linkd's rootfs budget. Nothing under
  // target/ is replaced until every target fits.
  const work = Deno.makeTempDirSync({ dir: target, prefix: ".build-" });
  try {
    for (const { t, denort, runtime } of plans) {
      const dir = `${work}/${t.arch}`;
      for (const d of [dir, `${dir}/payload`, `${dir}/rootfs`]) {
        Deno.mkdirSync(d);
        Deno.chmodSync(d, 0o755);
      }
      const shipped = denort
        ? { linkd: await compile(t, denort.env, bundle, `${dir}/payload/linkd`) }
        : writePayload(`${dir}/payload`, runtime!, bundle);
      const files = stageOverlay(`${dir}/rootfs`, `${root}firmware`, shipped);
      const { ok, line } = budgetLine(t.arch, await storedSize(files, budget, cacheDir), budget);
      if (!ok) throw new Error(line);
      console.error(`build: ${line}`);
    }
    // 4. Into place: the payload and its tarball, or the executable; the overlay.
    for (const { t, denort } of plans) {
      const dir = `${work}/${t.arch}`;
      const compiled = `${target}/linkd-${t.arch}-linux`;
      const payload = `${target}/firmware/${t.arch}`;
      const tarball = `${target}/linkd-${VERSION}-${t.arch}.tar.gz`;
      const overlay = `${target}/linkd-${VERSION}-${t.arch}-rootfs.tar.gz`;
      for (const old of [compiled, payload, tarball, overlay]) removeIfExists(old);
      if (denort) {
        Deno.renameSync(`${dir}/payload/linkd`, compiled);
        built.push(compiled);
      } else {
        Deno.mkdirSync(`${target}/firmware`, { recursive: true });
        Deno.renameSync(`${dir}/payload`, payload);
        await reproducibleTar(payload, PAYLOAD, tarball, sourceDateEpoch);
        built.push(...PAYLOAD.map((n) => `${payload}/${n}`), tarball);
      }
      const tops = [...Deno.readDirSync(`${dir}/rootfs`)].map((e) => e.name);
      await reproducibleTar(`${dir}/rootfs`, tops, overlay, sourceDateEpoch);
      built.push(overlay);
    }
  } catch (e) {
    removeIfExists(work);
    failWith(e);
  }
  removeIfExists(work);

  // 3. Sizes and digests.
  for (const path of built) {
    const bytes = Deno.readFileSync(path);
    const sha = createHash("sha256").update(bytes).digest("hex");
    console.log(`${path.replace(root, "")}  ${bytes.length} bytes  sha256 ${sha}`);
  }
}

if (import.meta.main) await main();
