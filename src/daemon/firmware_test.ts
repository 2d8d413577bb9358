/**
 * Checks the files under firmware/: the default config parses with linkd's own parser, the
 * systemd unit has the ordering, restart, watchdog and hardening keys (and passes
 * `systemd-analyze verify` where installed), the init script is valid POSIX sh (and passes
 * shellcheck where installed), and the partition table adds up.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseConfig } from "../config.ts";

const FW = new URL("../../firmware/", import.meta.url).pathname;
const read = (p: string) => Deno.readTextFileSync(`${FW}${p}`);

async function which(cmd: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const p = `${dir}/${cmd}`;
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return await Promise.resolve(null);
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** INI sections of a unit file: each key's values in order (repeated keys accumulate). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[([A-Za-z]+)\]$/.exec(line);
    if (sec) {
      cur = new Map();
      sections.set(sec[1]!, cur);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv && cur, `unit line is not KEY=VALUE in a section: ${line}`);
    const [, k, v] = kv!;
    cur!.set(k!, [...(cur!.get(k!) ?? []), v!]);
  }
  return sections;
}

test("linkd.json: parses with parseConfig, names /dev/mtd3 of 65536 bytes, every contract key", () => {
  const text = read("linkd.json");
  const c = parseConfig(text, "/etc/linkd/linkd.json");
  assert.is(c.flash.path, "/dev/mtd3");
  assert.is(c.flash.size, 65536);
  assert.is(c.flash.eraseSize, 4096);
  assert.is(c.flash.pageSize, 256);
  assert.is(c.keys.otpPath, "/sys/firmware/linkd/otp");
  assert.is(c.bus.url, "mqtt://127.0.0.1:1883");
  // The speaker shows the code on its own outputs; the terminal's art would only fill the journal.
  assert.equal(c.display.outputs, ["voice", "segment", "screen"]);
  const raw = JSON.parse(text);
  const keys: Record<string, string[]> = {
    flash: ["path", "size", "eraseSize", "pageSize"],
    keys: ["otpPath"],
    auth: ["dialect", "codepairUrl", "tokenUrl", "scopes", "fallbackScopes"],
    bus: ["url", "username", "passwordFile", "prefix"],
    display: ["outputs"],
  };
  for (const [sec, names] of Object.entries(keys)) {
    for (const k of names) assert.ok(k in raw[sec], `${sec}.${k} is in linkd.json`);
  }
});

test("linkd.service: notify, ordering, restart, watchdog and hardening keys", () => {
  const u = parseUnit(read("systemd/linkd.service"));
  const unit = u.get("Unit")!;
  const svc = u.get("Service")!;
  assert.ok(unit && svc && u.get("Install"), "[Unit], [Service], [Install]");
  const all = (m: Map<string, string[]>, k: string) => (m.get(k) ?? []).join(" ").split(/\s+/);
  const one = (m: Map<string, string[]>, k: string) => {
    const v = m.get(k);
    assert.ok(v, `${k}= is set`);
    return v![v!.length - 1]!;
  };
  assert.ok(all(unit, "After").includes("mosquitto.service"));
  assert.ok(all(unit, "Wants").includes("mosquitto.service"));
  assert.ok(all(unit, "After").includes("time-sync.target"));
  for (const k of ["Wants", "Requires", "BindsTo"]) {
    assert.not.ok(all(unit, k).includes("time-sync.target"), `time-sync.target only in After=`);
  }
  assert.ok(Number(one(unit, "StartLimitBurst")) > 0);
  assert.ok(Number(one(unit, "StartLimitIntervalSec")) > 0);

  const expect: Record<string, string> = {
    Type: "notify",
    ExecStart: "/usr/bin/linkd run --config /etc/linkd/linkd.json",
    ExecReload: "/bin/kill -HUP $MAINPID", // linkd reloads its config on SIGHUP
    NotifyAccess: "main",
    WatchdogSec: "30",
    Restart: "on-failure",
    User: "linkd",
    UMask: "0077",
    LimitCORE: "0",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    NoNewPrivileges: "yes",
    CapabilityBoundingSet: "",
    LockPersonality: "yes",
    RestrictRealtime: "yes",
    SystemCallArchitectures: "native",
    DevicePolicy: "closed",
  };
  for (const [k, v] of Object.entries(expect)) assert.is(one(svc, k), v, `${k}=`);
  assert.equal(all(svc, "RestrictAddressFamilies").sort(), ["AF_INET", "AF_INET6", "AF_UNIX"]);
  assert.ok(all(svc, "DeviceAllow").join(" ").includes("char-mtd"));
  assert.ok(/^\d+s?$/.test(one(svc, "RestartSec")) && parseInt(one(svc, "RestartSec")) >= 1);
  assert.ok(/^\d+s?$/.test(one(svc, "TimeoutStopSec")));
  assert.ok(!svc.has("DynamicUser"), "a fixed user owns the device nodes");
  // V8's JIT needs W+X pages: MemoryDenyWriteExecute=yes would kill Deno at start.
  assert.is.not(one(svc, "MemoryDenyWriteExecute"), "yes");
  for (const code of ["64", "78"]) assert.ok(all(svc, "RestartPreventExitStatus").includes(code));
  // V8's code cache outlives the service (PrivateTmp= empties /tmp at every start).
  assert.is(one(svc, "CacheDirectory"), "linkd");
  assert.is(one(svc, "CacheDirectoryMode"), "0700");
});

test("linkd.service: systemd-analyze verify (when installed)", async () => {
  const sa = await which("systemd-analyze");
  if (sa === null) {
    console.log("    note: systemd-analyze not installed, verify skipped");
    return;
  }
  // /usr/bin/linkd does not exist on the build host: verify checks that it is executable.
  const dir = await Deno.makeTempDir({ prefix: "linkd-unit-" });
  try {
    const unit = read("systemd/linkd.service").replace(
      "ExecStart=/usr/bin/linkd ",
      "ExecStart=/bin/true ",
    );
    await Deno.writeTextFile(`${dir}/linkd.service`, unit);
    const r = await run(sa, ["verify", `${dir}/linkd.service`]);
    assert.is(r.code, 0, r.out);
    // Unknown or misspelt keys are only warned about, with exit 0: allow no output at all.
    assert.is(r.out.trim(), "", r.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("init.d/S80linkd: POSIX sh syntax (dash, sh), shellcheck when installed", async () => {
  const path = `${FW}init.d/S80linkd`;
  const text = read("init.d/S80linkd");
  assert.ok(text.startsWith("#!/bin/sh\n"));
  assert.ok((Deno.statSync(path).mode ?? 0) & 0o111, "executable");
  for (const word of ["start-stop-daemon", '-p "$PIDFILE"', "TERM", "start)", "stop)"]) {
    assert.ok(text.includes(word), word);
  }
  for (const w of ["restart", "status"]) assert.ok(text.includes(w), w);
  // V8's code cache in a persistent folder, private to linkd, handed to the launcher.
  for (const w of ["CACHE_DIR=/var/cache/linkd", 'chmod 0700 "$CACHE_DIR"', "export DENO_DIR"]) {
    assert.ok(text.includes(w), w);
  }
  for (const shell of ["sh", "dash", "busybox"]) {
    const p = await which(shell);
    if (p === null) continue;
    const r = await run(p, shell === "busybox" ? ["sh", "-n", path] : ["-n", path]);
    assert.is(r.code, 0, `${shell} -n: ${r.out}`);
  }
  const sc = await which("shellcheck");
  if (sc === null) {
    console.log("    note: shellcheck not installed, skipped");
    return;
  }
  const r = await run(sc, ["-s", "sh", path]);
  assert.is(r.code, 0, r.out);
});

test("init.d/S80linkd: the daemon's output reaches syslog (logger), and the pid file names the daemon", async () => {
  const ssd = await which("start-stop-daemon");
  if (ssd === null || Deno.uid() !== 0) {
    if (Deno.env.get("CI")) assert.unreachable("CI runs as root with start-stop-daemon");
    console.log("    note: needs root and start-stop-daemon, skipped");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "linkd-initd-" });
  const sh = (name: string, body: string) => {
    Deno.writeTextFileSync(`${dir}/${name}`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return `${dir}/${name}`;
  };
  // A daemon that writes to stdout and stderr, and exits on SIGTERM; a logger that keeps lines.
  const daemon = sh(
    "linkd",
    `echo "out: $*"; echo "err: to stderr" >&2
trap 'echo "TERM received" >&2; exit 0' TERM
trap 'echo "HUP received" >&2' HUP
while :; do sleep 0.1; done`,
  );
  const logger = sh("logger", `echo "logger $*" >>"$LOG_OUT"; cat >>"$LOG_OUT"`);
  const defaults = `${dir}/defaults`;
  Deno.writeTextFileSync(
    defaults,
    [
      `DAEMON=${daemon}`,
      `CONFIG=${dir}/linkd.json`,
      "USER=root",
      `PIDFILE=${dir}/linkd.pid`,
      `CACHE_DIR=${dir}/cache`,
      `LOGFIFO=${dir}/linkd.log`,
      `LOGGER=${logger}`,
      "STOP_TIMEOUT=5",
    ].join("\n") + "\n",
  );
  const init = async (verb: string) => {
    const o = await new Deno.Command(`${FW}init.d/S80linkd`, {
      args: [verb],
      env: { LINKD_DEFAULTS: defaults, LOG_OUT: `${dir}/syslog` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
  };
  const syslog = () => {
    try {
      return Deno.readTextFileSync(`${dir}/syslog`);
    } catch {
      return "";
    }
  };
  const until = async (ok: () => boolean, what: string) => {
    for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ok(), `${what}; syslog: ${syslog()}`);
  };
  try {
    const started = await init("start");
    assert.is(started.code, 0, started.out);
    await until(() => syslog().includes("err: to stderr"), "stderr in syslog");
    const log = syslog();
    assert.match(log, /^logger -t linkd -p daemon\.notice$/m);
    assert.match(log, new RegExp(`^out: run --config ${dir}/linkd\\.json$`, "m"));
    // The pid file names the daemon (sh exec'd it): SIGTERM reaches it, not a wrapper.
    const pid = Deno.readTextFileSync(`${dir}/linkd.pid`).trim();
    const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    assert.ok(cmdline.some((a) => a === daemon), `pid ${pid} runs ${cmdline.join(" ")}`);
    assert.is((await init("status")).code, 0);
    // reload: SIGHUP to the daemon, which keeps running with the same pid.
    assert.is((await init("reload")).code, 0);
    await until(() => syslog().includes("HUP received"), "SIGHUP reached the daemon");
    assert.is(Deno.readTextFileSync(`${dir}/linkd.pid`).trim(), pid);
    assert.is((await init("status")).code, 0);
    const stopped = await init("stop");
    assert.is(stopped.code, 0, stopped.out);
    await until(() => syslog().includes("TERM received"), "the daemon's last words in syslog");
    assert.is((await init("status")).code, 3);
  } finally {
    await init("stop").catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

/** Parses `mtdparts=<dev>:<part>,...` into offsets and sizes in bytes. */
function parseMtdparts(
  line: string,
  total: number,
): { name: string; offset: number; size: number; ro: boolean }[] {
  const m = /^mtdparts=([^:]+):(.+)$/.exec(line);
  assert.ok(m, `mtdparts line: ${line}`);
  const unit = (s: string) => {
    const n = /^(0x[0-9a-f]+|\d+)([kmg]?)$/i.exec(s);
    assert.ok(n, `size ${s}`);
    const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[n![2]!.toLowerCase()]!;
    return Number(n![1]) * mult;
  };
  const parts = [];
  let at = 0;
  for (const p of m![2]!.split(",")) {
    const q = /^(-|[0-9a-fx]+[kmg]?)(?:@([0-9a-fx]+[kmg]?))?\(([^)]+)\)(ro)?$/i.exec(p);
    assert.ok(q, `partition ${p}`);
    const offset = q![2] === undefined ? at : unit(q![2]!);
    const size = q![1] === "-" ? total - offset : unit(q![1]!);
    parts.push({ name: q![3]!, offset, size, ro: q![4] === "ro" });
    at = offset + size;
  }
  return parts;
}

test("mtdparts.txt: 64 KiB-aligned, contiguous, fits 16 MiB, linkd is 65536 bytes at mtd3", () => {
  const total = 16 * 1024 * 1024;
  const block = 64 * 1024;
  const lines = read("mtdparts.txt").split("\n").map((l) => l.trim()).filter((l) =>
    l !== "" && !l.startsWith("#")
  );
  assert.is(lines.length, 1);
  const parts = parseMtdparts(lines[0]!, total);
  assert.equal(parts.map((p) => p.name), ["u-boot", "u-boot-env", "kernel", "linkd", "rootfs"]);
  let at = 0;
  for (const p of parts) {
    assert.is(p.offset, at, `${p.name} starts where the previous one ends`);
    assert.is(p.offset % block, 0, `${p.name} offset aligned`);
    assert.is(p.size % block, 0, `${p.name} size aligned`);
    assert.ok(p.size > 0);
    at = p.offset + p.size;
  }
  assert.ok(at <= total, "fits the 16 MiB part");
  assert.is(at, total, "the last partition takes the rest");
  assert.equal(parts[3], { name: "linkd", offset: 0x350000, size: 65536, ro: false });
  assert.ok(parts[0]!.ro, "the bootloader is read-only");
  // partitions.md shows the same string and the same offsets
  const md = read("partitions.md");
  assert.ok(md.includes(lines[0]!), "partitions.md quotes the command line");
  for (const p of parts) {
    const hex = `0x${p.offset.toString(16).toUpperCase().padStart(6, "0")}`;
    assert.ok(
      md.toUpperCase().includes(hex.toUpperCase()),
      `partitions.md has ${p.name} at ${hex}`,
    );
  }
  assert.ok(md.includes("/sys/firmware/linkd/otp"));
});

test.run();
