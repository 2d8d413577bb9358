/**
 * `deno task build` (build.ts, issue 5 "Build"): the artifacts exist with the printed sizes and
 * SHA-256s, a second build gives the same bytes, the x86_64 payload runs `linkd --version`, and
 * the aarch64 payload runs under qemu-aarch64-static on an emulated device (`--version` and
 * `status --json` on a fresh flash image). Without qemu this last test is skipped with a
 * warning, except on CI (env CI set), where it fails.
 *
 * The builds start as on a new machine: an empty npm cache and an empty build cache of this file's
 * own (not ~/.npm, not target/cache), so the aarch64 runtime really is fetched with `npm pack`;
 * a warm cache once hid a retry setting that npm refuses on a real fetch. The npm fetch itself
 * (build.ts's npmPack()) is tested on its own too: with an empty cache against the registry, and
 * against a closed port, where it must fail within seconds showing npm's own error lines.
 *
 * The root-filesystem overlay of each architecture is unpacked into a temporary root: its entries
 * are the install map's (scripts/install.ts), which firmware/README.md's table must match; the
 * unit passes `systemd-analyze verify --root` there (v252 looks up the unit, its ExecStart and
 * ExecReload, and the units it names under the root, so the root gets the base system's few
 * pieces the unit names: /bin/kill and systemd's targets, copied from this machine); and
 * `/usr/bin/linkd` runs `--version` and `status` from it (aarch64 under qemu). The build's lines on
 * stderr say how each target was built and what its overlay takes against the rootfs budget; a
 * budget too small fails the build. The runtime's needs in firmware/README.md (glibc, libgcc_s,
 * shared libraries, kernel ABI tag, page alignment) are measured again from the binaries.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { npmErrorLines, npmFetchEnv, npmPack, tarballName } from "../scripts/npm_pack.ts";
import { compileBase } from "../scripts/compile_base.ts";
import { INSTALL, LINKS } from "../scripts/install.ts";
import { exists } from "../scripts/tool.ts";
import { VERSION } from "../src/version.ts";

const root = new URL("..", import.meta.url).pathname;
const dec = new TextDecoder();
const QEMU_PREFIX = "/usr/aarch64-linux-gnu";
const ARM64 = "@deno/linux-arm64-glibc";

/** This file's empty npm and build caches (a new machine's), removed after its tests. */
const caches = Deno.makeTempDirSync({ prefix: "linkd-build-caches-" });
const freshCaches = { npm_config_cache: `${caches}/npm`, LINKD_BUILD_CACHE: `${caches}/build` };
test.after(() => Deno.removeSync(caches, { recursive: true }));

/** A devDependency's pinned version in package.json. */
function devVersion(name: string): string {
  const pkg = JSON.parse(Deno.readTextFileSync(`${root}package.json`)) as {
    devDependencies: Record<string, string>;
  };
  const v = pkg.devDependencies[name];
  if (v === undefined) throw new Error(`Cannot find devDependency ${name} in package.json`);
  return v;
}

/** A local TCP port nothing listens on (it was free a moment ago): connecting is refused. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

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

let buildStderr = "";

/** Runs the build; its printed artifacts as path (relative to the repo) → [size, sha256]. */
async function build(env: Record<string, string> = {}): Promise<Map<string, [number, string]>> {
  const out = await run(Deno.execPath(), ["run", "-A", "build.ts"], { ...freshCaches, ...env });
  assert.is(out.code, 0, `build failed:\n${out.stderr}`);
  buildStderr = out.stderr;
  const arts = new Map<string, [number, string]>();
  for (const line of out.stdout.split("\n").filter((l) => l !== "")) {
    const m = /^(\S+) {2}(\d+) bytes {2}sha256 ([0-9a-f]{64})$/.exec(line);
    assert.ok(m, `unexpected build output line: ${line}`);
    arts.set(m[1]!, [Number(m[2]), m[3]!]);
  }
  return arts;
}

let first: Map<string, [number, string]>;
let firstStderr = "";
const ARCHES = [
  { arch: "x86_64", triple: "x86_64-unknown-linux-gnu" },
  { arch: "aarch64", triple: "aarch64-unknown-linux-gnu" },
];
const overlayOf = (arch: string) => `target/linkd-${VERSION}-${arch}-rootfs.tar.gz`;

test("the build prints every artifact with its size and SHA-256", async () => {
  first = await build();
  firstStderr = buildStderr;
  assert.ok(first.has("target/linkd.js"));
  for (const arch of ["x86_64", "aarch64"]) {
    const compiled = `target/linkd-${arch}-linux`;
    if (first.has(compiled)) continue; // a denort base was available for this target
    for (const f of ["deno", "linkd", "linkd.js"]) {
      assert.ok(first.has(`target/firmware/${arch}/${f}`), `${arch}/${f} not built`);
    }
    assert.ok(first.has(`target/linkd-${VERSION}-${arch}.tar.gz`), `${arch} tarball not built`);
  }
  for (const arch of ["x86_64", "aarch64"]) {
    assert.ok(first.has(overlayOf(arch)), `${arch} overlay not built`);
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

/** What stderr says about each target: how it was built, and what its overlay takes. */
test("the build says per target why it made the payload instead of `deno compile`, and what the overlay takes", () => {
  const lines = firstStderr.trim().split("\n");
  const storage = JSON.parse(Deno.readTextFileSync(`${root}firmware/storage.json`)) as {
    rootfs: { linkdBudget: number; blockSize: number };
  };
  const budget = storage.rootfs.linkdBudget;
  const home = Deno.env.get("HOME") ?? "";
  const denoDir = Deno.env.get("DENO_DIR") ||
    `${Deno.env.get("XDG_CACHE_HOME") || `${home}/.cache`}/deno`;
  for (const { arch, triple } of ARCHES) {
    const how = lines.filter((l) => l.startsWith(`build: ${arch}: `) && !l.includes("overlay"));
    assert.is(how.length, 1, firstStderr);
    if (first.has(`target/linkd-${arch}-linux`)) {
      assert.match(how[0]!, `build: ${arch}: deno compile, `);
    } else {
      const zip = `${denoDir}/dl/release/v${devVersion("deno")}/denort-${triple}.zip`;
      const bin = Deno.env.get("DENORT_BIN")
        ? `DENORT_BIN serves only the host's architecture (${Deno.build.arch})`
        : "no DENORT_BIN";
      assert.is(
        how[0],
        `build: ${arch}: the payload (runtime, bundle, launcher), not deno compile: ${bin}, ` +
          `and no ${zip}`,
      );
    }
    const size = lines.filter((l) => l.startsWith(`build: ${arch}: the overlay takes `));
    assert.is(size.length, 1, firstStderr);
    const m = new RegExp(
      `^build: ${arch}: the overlay takes \\d+\\.\\d MiB \\((\\d+) bytes, squashfs xz, ` +
        `${storage.rootfs.blockSize / 1024} KiB blocks\\) of linkd's rootfs budget ${
          (budget / 2 ** 20).toFixed(1)
        } MiB ` +
        `\\(${budget} bytes, rootfs\\.linkdBudget in firmware/storage\\.json\\)$`,
    ).exec(size[0]!);
    assert.ok(m, size[0]);
    const stored = Number(m![1]);
    // xz of a native executable: between a fifth and a half of the bytes the overlay holds.
    const raw = Deno.readFileSync(`${root}target/firmware/${arch}/deno`).length;
    assert.ok(stored > raw / 5 && stored < raw / 2 && stored <= budget, `${stored} of ${raw}`);
  }
});

test("compileBase(): DENORT_BIN serves the host only; else the exact denort zip; else says why", () => {
  const x = ARCHES[0]!;
  const a = ARCHES[1]!;
  const env = { HOME: "/home/u", DENORT_BIN: "/opt/denort" };
  const none = () => false;
  const zipOf = (t: { triple: string }, dir: string) =>
    `${dir}/dl/release/v2.9.6/denort-${t.triple}.zip`;
  assert.equal(compileBase(x, "2.9.6", env, "x86_64", (p) => p === "/opt/denort"), {
    env: { DENORT_BIN: "/opt/denort" },
    line: "x86_64: deno compile, DENORT_BIN=/opt/denort",
  });
  assert.equal(compileBase(a, "2.9.6", env, "x86_64", none), {
    env: null,
    line: "aarch64: the payload (runtime, bundle, launcher), not deno compile: DENORT_BIN " +
      `serves only the host's architecture (x86_64), and no ${zipOf(a, "/home/u/.cache/deno")}`,
  });
  assert.equal(
    compileBase(a, "2.9.6", { DENO_DIR: "/d" }, "x86_64", none).line,
    `aarch64: the payload (runtime, bundle, launcher), not deno compile: no DENORT_BIN, and no ${
      zipOf(a, "/d")
    }`,
  );
  assert.equal(compileBase(a, "2.9.6", { DENO_DIR: "/d" }, "x86_64", (p) => p === zipOf(a, "/d")), {
    env: { DENO_DIR: "/d" },
    line: `aarch64: deno compile, ${zipOf(a, "/d")}`,
  });
  assert.throws(() => compileBase(x, "2.9.6", env, "x86_64", none), /^Cannot use DENORT_BIN/);
});

/** firmware/README.md's install table: from → [to, mode] (mode `link` for a symbolic link). */
function readmeInstallTable(): Map<string, [string, string]> {
  const md = Deno.readTextFileSync(`${root}firmware/README.md`);
  const rows = new Map<string, [string, string]>();
  for (const line of md.split("\n## ")[0]!.split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const to = /^`(\/[^`]+)`/.exec(cells[1] ?? "");
    if (cells.length !== 3 || !to) continue;
    rows.set(cells[0]!.replace(/^`|`.*$/g, ""), [to[1]!, cells[2]!.replace(/`/g, "")]);
  }
  return rows;
}

test("firmware/README.md's table is the install map (scripts/install.ts): sources, paths, modes", () => {
  const want = new Map<string, [string, string]>();
  for (const e of INSTALL) want.set(e.from, [e.to, `0${e.mode.toString(8)}`]);
  for (const l of LINKS) want.set(l.target, [l.to, "link"]);
  assert.equal([...readmeInstallTable()].sort(), [...want].sort());
  for (const e of INSTALL) {
    if (e.from.startsWith("payload/")) continue;
    assert.ok(exists(`${root}firmware/${e.from}`), `firmware/${e.from} exists`);
  }
  // The unit's documentation is what the overlay installs.
  const unit = Deno.readTextFileSync(`${root}firmware/systemd/linkd.service`);
  const doc = /^Documentation=file:(\S+)$/m.exec(unit)?.[1];
  assert.ok(INSTALL.some((e) => e.to === doc), `Documentation=file:${doc} is installed`);
});

test("overlays: exactly the install map's entries, sorted, root's, mtime 0, gzip -n, with its modes", async () => {
  for (const { arch } of ARCHES) {
    const compiled = first.has(`target/linkd-${arch}-linux`);
    const out = await run("tar", ["--numeric-owner", "-tvzf", overlayOf(arch)], { TZ: "UTC" });
    assert.is(out.code, 0, out.stderr);
    const rows = out.stdout.trim().split("\n").map((l) => l.split(/\s+/));
    const names = rows.map((r) => r[5]!);
    assert.equal(names, [...names].sort(), "sorted");
    const want = new Map<string, string>();
    const dirs = (path: string) => {
      const parts = path.slice(1).split("/");
      for (let i = 1; i < parts.length; i++) {
        want.set(`${parts.slice(0, i).join("/")}/`, "drwxr-xr-x");
      }
    };
    const modes: Record<number, string> = { 0o644: "-rw-r--r--", 0o755: "-rwxr-xr-x" };
    for (const e of INSTALL) {
      if (compiled && (e.from === "payload/deno" || e.from === "payload/linkd.js")) continue;
      dirs(e.to);
      want.set(e.to.slice(1), modes[e.mode]!);
    }
    for (const l of LINKS) {
      dirs(l.to);
      want.set(l.to.slice(1), "lrwxrwxrwx");
    }
    assert.equal(new Map(rows.map((r) => [r[5]!, r[0]!])), want, arch);
    for (const r of rows) {
      assert.is(r[1], "0/0");
      assert.is(`${r[3]} ${r[4]}`, "1970-01-01 00:00");
    }
    const link = rows.find((r) => r[5] === "usr/bin/linkd")!;
    assert.equal(link.slice(6), ["->", "../lib/linkd/linkd"]);
    const head = Deno.readFileSync(`${root}${overlayOf(arch)}`).subarray(0, 10);
    assert.is(head[3]! & 0x08, 0, "gzip header names a file");
    assert.equal([...head.subarray(4, 8)], [0, 0, 0, 0]);
  }
});

/** The overlay of `arch` unpacked into a new temporary root, with an erased flash and a config. */
async function unpackedRoot(arch: string): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: `linkd-rootfs-${arch}-` });
  const out = await run("tar", ["-xzf", `${root}${overlayOf(arch)}`, "-C", dir]);
  assert.is(out.code, 0, out.stderr);
  // The shipped config with the flash and OTP in the temporary root (a fresh, erased flash).
  const config = JSON.parse(Deno.readTextFileSync(`${dir}/etc/linkd/linkd.json`));
  Deno.mkdirSync(`${dir}/var/lib/linkd`, { recursive: true });
  Deno.writeFileSync(
    `${dir}/var/lib/linkd/flash.img`,
    new Uint8Array(config.flash.size).fill(0xff),
  );
  config.flash.path = `${dir}/var/lib/linkd/flash.img`;
  config.keys.otpPath = `${dir}/var/lib/linkd/otp.bin`;
  Deno.writeTextFileSync(`${dir}/etc/linkd/test.json`, JSON.stringify(config));
  return dir;
}

test("overlay: `systemd-analyze verify --root` finds the unit, /usr/bin/linkd and /bin/kill in the root", async () => {
  const sa = await which("systemd-analyze");
  if (sa === null) {
    if (Deno.env.get("CI")) assert.unreachable("CI has systemd-analyze (systemd)");
    console.warn("WARNING: skipped: systemd-analyze is not installed");
    return;
  }
  const dir = await unpackedRoot("x86_64");
  try {
    // The base system's part (merged /usr, kill, systemd's own targets), from this machine.
    Deno.symlinkSync("usr/bin", `${dir}/bin`);
    Deno.copyFileSync("/usr/bin/kill", `${dir}/usr/bin/kill`);
    Deno.chmodSync(`${dir}/usr/bin/kill`, 0o755);
    for (const t of ["sysinit", "basic", "multi-user", "network", "time-sync"]) {
      Deno.copyFileSync(
        `/usr/lib/systemd/system/${t}.target`,
        `${dir}/usr/lib/systemd/system/${t}.target`,
      );
    }
    const verify = () => run(sa, ["verify", `--root=${dir}`, "linkd.service"]);
    const ok = await verify();
    assert.is(ok.code, 0, ok.stdout + ok.stderr);
    assert.is((ok.stdout + ok.stderr).trim(), "", "no warning either");
    // It really looks in the root: without the overlay's /usr/bin/linkd the unit fails.
    Deno.removeSync(`${dir}/usr/bin/linkd`);
    const without = await verify();
    assert.is.not(without.code, 0);
    assert.match(without.stderr, "Command /usr/bin/linkd is not executable");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

for (const { arch } of ARCHES) {
  test(`${arch} overlay: /usr/bin/linkd --version and status --json from the unpacked root`, async () => {
    let runner: string[] = [];
    if (arch === "aarch64") {
      const qemu = await which("qemu-aarch64-static");
      const libc = exists(`${QEMU_PREFIX}/lib/ld-linux-aarch64.so.1`) &&
        exists(`${QEMU_PREFIX}/lib/libgcc_s.so.1`);
      if (!qemu || !libc) {
        const why = !qemu
          ? "qemu-aarch64-static is not installed"
          : `${QEMU_PREFIX} lacks ld-linux-aarch64.so.1 or libgcc_s.so.1`;
        const fix = "apt-get install qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross";
        if (Deno.env.get("CI")) assert.unreachable(`${why} (${fix})`);
        console.warn(`WARNING: skipped the aarch64 overlay test: ${why} (${fix})`);
        return;
      }
      runner = [qemu, "-L", QEMU_PREFIX];
    }
    const compiled = first.has(`target/linkd-${arch}-linux`);
    const dir = await unpackedRoot(arch);
    try {
      const env: Record<string, string> = { DENO_DIR: `${dir}/deno`, QEMU_LD_PREFIX: QEMU_PREFIX };
      const linkd = (...args: string[]) =>
        compiled && runner.length > 0
          ? run(runner[0]!, [...runner.slice(1), `${dir}/usr/bin/linkd`, ...args], env, dir)
          : run(`${dir}/usr/bin/linkd`, args, { ...env, LINKD_RUNNER: runner.join(" ") }, dir);
      if (!compiled && runner.length > 0) {
        // The runtime really is the aarch64 one.
        const v = await run(runner[0]!, [
          ...runner.slice(1),
          `${dir}/usr/lib/linkd/deno`,
          "--version",
        ]);
        assert.is(v.code, 0, v.stderr);
        assert.match(v.stdout, /aarch64-unknown-linux-gnu/);
      }
      const version = await linkd("--version");
      assert.is(version.code, 0, version.stderr);
      assert.is(version.stdout, `linkd ${VERSION}\n`);

      const status = await linkd("status", "--config", `${dir}/etc/linkd/test.json`, "--json");
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
}

/** The runtime's needs as firmware/README.md's table states them: need → [x86_64, aarch64]. */
function readmeNeeds(): Map<string, [string, string]> {
  const md = Deno.readTextFileSync(`${root}firmware/README.md`);
  const section = md.split("\n## What the runtime needs of the system\n")[1] ?? "";
  const rows = new Map<string, [string, string]>();
  for (const line of section.split("\n")) {
    const c = line.split("|").slice(1, -1).map((x) => x.trim().replace(/^`|`$/g, ""));
    if (c.length === 4 && !c[0]!.startsWith("-") && c[0] !== "need") {
      rows.set(c[0]!, [c[1]!, c[2]!]);
    }
  }
  return rows;
}

test("firmware/README.md's runtime needs are what the shipped runtimes need (objdump, readelf)", async () => {
  const objdump = await which("objdump");
  const readelf = await which("readelf");
  if (!objdump || !readelf) {
    if (Deno.env.get("CI")) assert.unreachable("objdump and readelf (apt-get install binutils)");
    console.warn(
      "WARNING: skipped: objdump or readelf is not installed (apt-get install binutils)",
    );
    return;
  }
  const needs = readmeNeeds();
  assert.is(needs.size, 5, [...needs.keys()].join(", "));
  for (const [i, { arch }] of ARCHES.entries()) {
    if (first.has(`target/linkd-${arch}-linux`)) continue; // compiled: no separate runtime
    const deno = `${root}target/firmware/${arch}/deno`;
    const symbols = (await run(objdump, ["-T", deno])).stdout;
    const newest = (prefix: string) =>
      [...new Set(symbols.match(new RegExp(`${prefix}_[0-9.]+`, "g")) ?? [])].sort((a, b) =>
        a.localeCompare(b, "en", { numeric: true })
      ).pop();
    const needed = [...(await run(objdump, ["-p", deno])).stdout.matchAll(/NEEDED\s+(\S+)/g)]
      .map((m) => m[1]).join(" ");
    const abi = /OS: Linux, ABI: ([0-9.]+)/.exec((await run(readelf, ["-n", deno])).stdout)?.[1];
    const align = [
      ...(await run(readelf, ["-lW", deno])).stdout.matchAll(/^\s*LOAD\s.*\s(0x[0-9a-f]+)$/gm),
    ].map((m) => m[1]);
    assert.equal([...new Set(align)].length, 1, `one LOAD alignment: ${align}`);
    const measured: [string, string | undefined][] = [
      ["glibc, newest symbol version", newest("GLIBC")],
      ["libgcc_s, newest symbol version", newest("GCC")],
      ["shared libraries (`NEEDED`)", needed],
      ["kernel floor of its glibc (ABI tag)", abi],
      ["page size: `LOAD` segments aligned to", align[0]],
    ];
    for (const [need, value] of measured) {
      assert.ok(needs.has(need), `README row ${need}`);
      assert.is(needs.get(need)![i], value, `${arch}: ${need}`);
    }
  }
});

test("npmFetchEnv(): the caller's retries, else few and short; minimum never above maximum", () => {
  const retries = (env: Record<string, string>) => {
    const e = npmFetchEnv(env);
    const all = ["retries", "retry_mintimeout", "retry_maxtimeout"].map((k) => [
      e[`npm_config_fetch_${k}`],
      e[`NPM_CONFIG_FETCH_${k.toUpperCase()}`],
    ]);
    for (const [lower, upper] of all) assert.is(lower, upper, "both cases agree");
    return all.map(([lower]) => lower);
  };
  assert.equal(retries({}), ["1", "1000", "10000"]);
  // The old build's one setting, below npm 11's default minimum (10 s): refused on a real fetch.
  assert.equal(retries({ npm_config_fetch_retry_maxtimeout: "5000" }), ["1", "1000", "5000"]);
  assert.equal(
    retries({ NPM_CONFIG_FETCH_RETRY_MINTIMEOUT: "20000", npm_config_fetch_retries: "0" }),
    ["0", "10000", "10000"],
  );
  assert.equal(retries({ npm_config_fetch_retry_maxtimeout: "soon" }), ["1", "1000", "10000"]);
});

test("npmErrorLines(): npm's own error lines, in order, at most 5, one line each", () => {
  const refused = [
    "npm error code ECONNREFUSED",
    "npm error syscall connect",
    "npm error errno ECONNREFUSED",
    "npm error FetchError: request to http://127.0.0.1:9/x failed, reason: connect ECONNREFUSED",
    "npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/index.js:130:14)",
    "npm error   code: 'ECONNREFUSED',",
    "npm error }",
    "npm error",
    "npm error If you are behind a proxy, please make sure that the 'proxy' config is set.",
    "npm error A complete log of this run can be found in: /tmp/npm/_logs/debug-0.log",
    "npm error code ECONNREFUSED",
  ];
  assert.equal(npmErrorLines(`npm warn old\n${refused.join("\n")}\n`), [
    ...refused.slice(0, 4),
    refused[8],
  ]);
  assert.equal(
    npmErrorLines(
      "npm error minTimeout is greater than maxTimeout\r\n" +
        "npm error A complete log of this run can be found in: /tmp/npm/_logs/debug-0.log\r\n",
    ),
    ["npm error minTimeout is greater than maxTimeout"],
  );
  assert.equal(npmErrorLines("npm ERR! code E404\n"), ["npm ERR! code E404"]);
  const [long] = npmErrorLines(`npm error ${"x".repeat(1000)}`);
  assert.is(long!.length, 240);
  assert.equal(npmErrorLines("Killed\n"), []);
});

test("npmPack() with an empty npm cache fetches from the registry", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-build-pack-" });
  try {
    const version = devVersion("uvu");
    const tgz = await npmPack("uvu", version, dir, { npm_config_cache: `${dir}/npm` });
    assert.is(tgz, `${dir}/${tarballName("uvu", version)}`);
    const out = await run("tar", ["-tzf", tgz]);
    assert.is(out.code, 0, out.stderr);
    assert.ok(out.stdout.split("\n").includes("package/package.json"), out.stdout);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("npmPack() with an empty npm cache and an unreachable registry fails fast, with npm's lines", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-build-pack-" });
  try {
    const version = devVersion("deno");
    const t0 = performance.now();
    const err = await npmPack(ARM64, version, dir, {
      npm_config_cache: `${dir}/npm`,
      npm_config_registry: `http://127.0.0.1:${closedPort()}/`,
      npm_config_fetch_retries: "0",
      // The old build's setting: alone, npm refused it ("minTimeout is greater than maxTimeout").
      npm_config_fetch_retry_maxtimeout: "5000",
    }).then(() => null, (e: unknown) => e);
    const seconds = (performance.now() - t0) / 1000;
    assert.instance(err, Error);
    const [head, ...lines] = (err as Error).message.split("\n");
    assert.is(head, `\`npm pack ${ARM64}@${version}\` failed`);
    assert.ok(lines.length >= 1 && lines.length <= 5, (err as Error).message);
    for (const l of lines) assert.match(l, /^ {2}npm error [A-Za-z]/);
    assert.match((err as Error).message, "ECONNREFUSED");
    assert.not.match((err as Error).message, "minTimeout");
    assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("an unreachable npm registry fails the build: one line, then npm's own error lines", async () => {
  const cache = Deno.makeTempDirSync({ prefix: "linkd-build-cache-" });
  try {
    const out = await run(Deno.execPath(), ["run", "-A", "build.ts"], {
      LINKD_BUILD_CACHE: cache,
      npm_config_cache: `${caches}/npm-unreachable`,
      npm_config_registry: `http://127.0.0.1:${closedPort()}/`,
      npm_config_fetch_retries: "0",
      DENORT_BIN: "",
    });
    assert.is.not(out.code, 0);
    // After the lines saying how each target is built (the payload, here), the failure.
    const [first, ...npmLines] = out.stderr.trim().split("\n").filter((l) =>
      !/^build: (x86_64|aarch64): the payload /.test(l)
    );
    assert.match(
      first!,
      /^build: Cannot fetch the aarch64 Deno runtime: `npm pack \S+` failed; check the npm registry, or put \S+\.tgz in \S+\/$/,
    );
    assert.ok(npmLines.length >= 1 && npmLines.length <= 5, out.stderr);
    for (const l of npmLines) assert.match(l, /^ {2}npm error [A-Za-z]/);
    assert.match(out.stderr, "ECONNREFUSED");
    assert.equal([...Deno.readDirSync(cache)].map((e) => e.name), [], "temporary folders left");
  } finally {
    Deno.removeSync(cache, { recursive: true });
  }
});

test("a rootfs budget too small fails the build with one line, and replaces nothing", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-build-storage-" });
  try {
    const storage = JSON.parse(Deno.readTextFileSync(`${root}firmware/storage.json`));
    storage.rootfs.linkdBudget = 1048576;
    Deno.writeTextFileSync(`${dir}/storage.json`, JSON.stringify(storage));
    const out = await run(Deno.execPath(), ["run", "-A", "build.ts"], {
      ...freshCaches,
      LINKD_STORAGE: `${dir}/storage.json`,
    });
    assert.is(out.code, 1, out.stderr);
    const last = out.stderr.trim().split("\n").pop()!;
    assert.match(
      last,
      new RegExp(
        "^build: Cannot fit the x86_64 overlay in the rootfs: it takes \\d+\\.\\d MiB " +
          "\\(\\d+ bytes, squashfs xz, 128 KiB blocks\\), over linkd's budget 1\\.0 MiB " +
          `\\(1048576 bytes, rootfs\\.linkdBudget in ${dir}/storage\\.json\\); ship less or ` +
          "change the layout \\(firmware/partitions\\.md\\)$",
      ),
    );
    // The previous build is whole, and no temporary folder is left.
    for (const [path, [size, sha]] of first) {
      const bytes = Deno.readFileSync(`${root}${path}`);
      assert.is(bytes.length, size, path);
      assert.is(createHash("sha256").update(bytes).digest("hex"), sha, path);
    }
    const left = [...Deno.readDirSync(`${root}target`)].filter((e) => e.name.startsWith("."));
    assert.equal(left.map((e) => e.name), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test.run();
