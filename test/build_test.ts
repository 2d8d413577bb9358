/**
 * `deno task build` (build.ts, issue 5 "Build"): the artifacts exist with the printed sizes and
 * SHA-256s, a second build gives the same bytes, the x86_64 payload runs `linkd --version`, and
 * the aarch64 payload runs under qemu-aarch64-static on an emulated device (`--version` and
 * `status --json` on a fresh flash image). Without qemu this last test is skipped with a
 * warning, except on CI (env CI set), where it fails. Reuses target/cache (the aarch64 runtime).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { VERSION } from "../src/version.ts";

const root = new URL("..", import.meta.url).pathname;
const dec = new TextDecoder();
const QEMU_PREFIX = "/usr/aarch64-linux-gnu";

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  cwd = root,
): Promise<Out> {
  const out = await new Deno.Command(cmd, { args, env, cwd, stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs the build; its printed artifacts as path (relative to the repo) → [size, sha256]. */
async function build(env: Record<string, string> = {}): Promise<Map<string, [number, string]>> {
  const out = await run(Deno.execPath(), ["run", "-A", "build.ts"], env);
  assert.is(out.code, 0, `build failed:\n${out.stderr}`);
  const arts = new Map<string, [number, string]>();
  for (const line of out.stdout.split("\n").filter((l) => l !== "")) {
    const m = /^(\S+) {2}(\d+) bytes {2}sha256 ([0-9a-f]{64})$/.exec(line);
    assert.ok(m, `unexpected build output line: ${line}`);
    arts.set(m[1]!, [Number(m[2]), m[3]!]);
  }
  return arts;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

let first: Map<string, [number, string]>;

test("the build prints every artifact with its size and SHA-256", async () => {
  first = await build();
  assert.ok(first.has("target/linkd.js"));
  for (const arch of ["x86_64", "aarch64"]) {
    const compiled = `target/linkd-${arch}-linux`;
    if (first.has(compiled)) continue; // a denort base was available for this target
    for (const f of ["deno", "linkd", "linkd.js"]) {
      assert.ok(first.has(`target/firmware/${arch}/${f}`), `${arch}/${f} not built`);
    }
    assert.ok(first.has(`target/linkd-${VERSION}-${arch}.tar.gz`), `${arch} tarball not built`);
  }
  for (const [path, [size, sha]] of first) {
    const bytes = Deno.readFileSync(`${root}${path}`);
    assert.is(bytes.length, size, path);
    assert.is(createHash("sha256").update(bytes).digest("hex"), sha, path);
  }
});

test("tarballs: sorted entries, owner 0/0, mtime 0, executable runtime and launcher", async () => {
  for (const arch of ["x86_64", "aarch64"]) {
    const tgz = `target/linkd-${VERSION}-${arch}.tar.gz`;
    if (!first.has(tgz)) continue;
    const out = await run("tar", ["--numeric-owner", "-tvzf", tgz], { TZ: "UTC" });
    assert.is(out.code, 0, out.stderr);
    const rows = out.stdout.trim().split("\n").map((l) => l.split(/\s+/));
    assert.equal(rows.map((r) => r[5]), ["deno", "linkd", "linkd.js"]);
    assert.equal(rows.map((r) => r[0]), ["-rwxr-xr-x", "-rwxr-xr-x", "-rw-r--r--"]);
    for (const r of rows) {
      assert.is(r[1], "0/0");
      assert.is(`${r[3]} ${r[4]}`, "1970-01-01 00:00");
    }
    // gzip -n: no name, mtime 0 in the header.
    const head = Deno.readFileSync(`${root}${tgz}`).subarray(0, 10);
    assert.is(head[3]! & 0x08, 0, "gzip header names a file");
    assert.equal([...head.subarray(4, 8)], [0, 0, 0, 0]);
  }
});

test("a second build gives the same bytes", async () => {
  const second = await build();
  assert.equal([...second.entries()], [...first.entries()]);
});

test("x86_64 payload: `linkd --version`", async () => {
  const exe = first.has("target/linkd-x86_64-linux")
    ? `${root}target/linkd-x86_64-linux`
    : `${root}target/firmware/x86_64/linkd`;
  const dir = Deno.makeTempDirSync({ prefix: "linkd-build-" });
  try {
    const out = await run(exe, ["--version"], { DENO_DIR: `${dir}/deno` }, dir);
    assert.is(out.code, 0, out.stderr);
    assert.is(out.stdout, `linkd ${VERSION}\n`);
    assert.match(out.stdout, /^linkd \d+\.\d+\.\d+/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("x86_64 launcher: V8's code cache goes to systemd's CacheDirectory, else DENO_DIR", async () => {
  if (first.has("target/linkd-x86_64-linux")) return; // a compiled binary has no launcher
  const exe = `${root}target/firmware/x86_64/linkd`;
  const dir = Deno.makeTempDirSync({ prefix: "linkd-build-" });
  try {
    // `env` replaces nothing here: Deno.Command passes the parent's environment plus these.
    const viaSystemd = await run(exe, ["--version"], {
      CACHE_DIRECTORY: `${dir}/cache`,
      DENO_DIR: "",
    }, dir);
    assert.is(viaSystemd.code, 0, viaSystemd.stderr);
    assert.ok(exists(`${dir}/cache/v8_code_cache_v2`), "the cache database under CACHE_DIRECTORY");
    const explicit = await run(exe, ["--version"], {
      CACHE_DIRECTORY: `${dir}/cache`,
      DENO_DIR: `${dir}/deno`,
    }, dir);
    assert.is(explicit.code, 0, explicit.stderr);
    assert.ok(exists(`${dir}/deno/v8_code_cache_v2`), "DENO_DIR wins");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

async function which(cmd: string): Promise<string | null> {
  const out = await run("sh", ["-c", 'command -v "$1"', "sh", cmd]);
  return out.code === 0 ? out.stdout.trim() : null;
}

test("aarch64 payload under qemu: `--version`, `status --json` on a fresh flash image", async () => {
  const qemu = await which("qemu-aarch64-static");
  const libc = exists(`${QEMU_PREFIX}/lib/ld-linux-aarch64.so.1`) &&
    exists(`${QEMU_PREFIX}/lib/libgcc_s.so.1`);
  if (!qemu || !libc) {
    const why = !qemu
      ? "qemu-aarch64-static is not installed"
      : `${QEMU_PREFIX} lacks ld-linux-aarch64.so.1 or libgcc_s.so.1`;
    const fix = "apt-get install qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross";
    if (Deno.env.get("CI")) assert.unreachable(`${why} (${fix})`);
    console.warn(`WARNING: skipped the aarch64 payload test: ${why} (${fix})`);
    return;
  }
  const compiled = first.has("target/linkd-aarch64-linux");
  const dir = Deno.makeTempDirSync({ prefix: "linkd-build-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/linkd.json`,
      JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }),
    );
    const env = { DENO_DIR: `${dir}/deno`, QEMU_LD_PREFIX: QEMU_PREFIX };
    const linkd = (...args: string[]) =>
      compiled
        ? run(qemu, ["-L", QEMU_PREFIX, `${root}target/linkd-aarch64-linux`, ...args], env, dir)
        : run(`${root}target/firmware/aarch64/linkd`, args, {
          ...env,
          LINKD_RUNNER: `${qemu} -L ${QEMU_PREFIX}`,
        }, dir);

    // The runtime really is the aarch64 one.
    if (!compiled) {
      const v = await run(qemu, [
        "-L",
        QEMU_PREFIX,
        `${root}target/firmware/aarch64/deno`,
        "--version",
      ]);
      assert.is(v.code, 0, v.stderr);
      assert.match(v.stdout, /aarch64-unknown-linux-gnu/);
    }

    const version = await linkd("--version");
    assert.is(version.code, 0, version.stderr);
    assert.is(version.stdout, `linkd ${VERSION}\n`);

    const status = await linkd("status", "--config", `${dir}/linkd.json`, "--json");
    assert.is(status.code, 0, status.stderr);
    const lines = status.stdout.trim().split("\n");
    assert.is(lines.length, 1, status.stdout);
    const s = JSON.parse(lines[0]!) as { provisioned: unknown; linked: unknown; store: unknown };
    assert.is(s.provisioned, false);
    assert.is(s.linked, false);
    assert.equal(s.store, { ok: true });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("an unreachable npm registry fails the build with one clear line", async () => {
  const cache = Deno.makeTempDirSync({ prefix: "linkd-build-cache-" });
  try {
    const out = await run(Deno.execPath(), ["run", "-A", "build.ts"], {
      LINKD_BUILD_CACHE: cache,
      npm_config_registry: "http://127.0.0.1:9/",
      npm_config_fetch_retries: "0",
      DENORT_BIN: "",
    });
    assert.is.not(out.code, 0);
    const lines = out.stderr.trim().split("\n");
    assert.is(lines.length, 1, out.stderr);
    assert.match(lines[0]!, /^build: Cannot fetch the aarch64 Deno runtime: `npm pack /);
  } finally {
    Deno.removeSync(cache, { recursive: true });
  }
});

test.run();
