/**
 * Checks the files under firmware/: the default config parses with linkd's own parser, the
 * systemd unit has the ordering, restart, watchdog and hardening keys (and passes
 * `systemd-analyze verify` where installed), the init script is valid POSIX sh (and passes
 * shellcheck where installed), and the storage layout adds up: storage.json (the one home of its
 * numbers) fits the NOR and the NAND, and mtdparts.txt and partitions.md say what it says.
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

/** firmware/storage.json: the one home of the layout's numbers (partitions.md says why). */
interface Storage {
  nor: {
    mtdDevice: string;
    size: number;
    eraseBlock: number;
    partitions: { mtd: number; name: string; offset: number; size: number; ro: boolean }[];
  };
  nand: {
    mtdDevice: string;
    mtd: number;
    name: string;
    size: number;
    eraseBlock: number;
    page: number;
    badBlocksPer1024: number;
    ubiReserved: number;
    volumes: { id: number; name: string; size: number | null; type: string }[];
  };
  rootfs: { blockSize: number; slotSize: number; linkdBudget: number };
}
const storage = () => JSON.parse(read("storage.json")) as Storage;

/** One device of `mtdparts=`: `<dev>:<part>,...`, offsets and sizes in bytes. */
function parseMtdDevice(
  spec: string,
  total: number,
): { dev: string; parts: { name: string; offset: number; size: number; ro: boolean }[] } {
  const m = /^([^:]+):(.+)$/.exec(spec);
  assert.ok(m, `mtdparts device: ${spec}`);
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
  return { dev: m![1]!, parts };
}

/** UBI's figures for the NAND: logical block size, blocks for volumes, each volume's blocks. */
function ubi(s: Storage): { leb: number; available: number; blocks: Map<string, number> } {
  const n = s.nand;
  const leb = n.eraseBlock - 2 * n.page; // EC and VID headers, one page each
  const pebs = n.size / n.eraseBlock;
  const available = pebs - Math.ceil(pebs * n.badBlocksPer1024 / 1024) - n.ubiReserved;
  const blocks = new Map<string, number>();
  for (const v of n.volumes) if (v.size !== null) blocks.set(v.name, Math.ceil(v.size / leb));
  const used = [...blocks.values()].reduce((a, b) => a + b, 0);
  for (const v of n.volumes) if (v.size === null) blocks.set(v.name, available - used);
  return { leb, available, blocks };
}

const hex6 = (n: number) => `0x${n.toString(16).toUpperCase().padStart(6, "0")}`;

test("storage.json: the NOR adds up (64 KiB-aligned, contiguous, whole part), linkd.json's flash is its linkd partition", () => {
  const s = storage();
  let at = 0;
  for (const [i, p] of s.nor.partitions.entries()) {
    assert.is(p.mtd, i, `${p.name} is mtd${i}`);
    assert.is(p.offset, at, `${p.name} starts where the previous one ends`);
    assert.is(p.offset % s.nor.eraseBlock, 0, `${p.name} offset aligned`);
    assert.is(p.size % s.nor.eraseBlock, 0, `${p.name} size aligned`);
    assert.ok(p.size > 0);
    at = p.offset + p.size;
  }
  assert.is(at, s.nor.size, "the partitions fill the part");
  const linkd = s.nor.partitions.find((p) => p.name === "linkd")!;
  const c = parseConfig(read("linkd.json"), "/etc/linkd/linkd.json");
  assert.is(c.flash.path, `/dev/mtd${linkd.mtd}`);
  assert.is(c.flash.size, linkd.size);
  assert.is(linkd.size % c.flash.eraseSize, 0);
  assert.ok(linkd.size / c.flash.eraseSize >= 16, "the store rotates through 16 sectors");
  assert.ok(!linkd.ro && s.nor.partitions[0]!.ro, "linkd writable, the bootloader read-only");
  // The udev rule hands linkd its partition by that name.
  assert.match(read("udev/60-linkd.rules"), `ATTR{name}=="${linkd.name}"`);
  assert.is(s.nand.mtd, s.nor.partitions.length, "the NAND registers after the NOR");
});

test("storage.json: the NAND's UBI volumes fit, the slots hold linkd's budget", () => {
  const s = storage();
  const { leb, available, blocks } = ubi(s);
  assert.is(leb, 126976);
  assert.is(available, 2004);
  assert.ok(Math.min(...blocks.values()) > 0, `every volume has blocks: ${[...blocks]}`);
  const total = [...blocks.values()].reduce((a, b) => a + b, 0);
  assert.is(total, available, "the volumes take every block UBI gives");
  assert.equal(s.nand.volumes.map((v) => v.id), s.nand.volumes.map((_, i) => i));
  for (const slot of ["rootfs_a", "rootfs_b"]) {
    const v = s.nand.volumes.find((x) => x.name === slot)!;
    assert.is(v.size, s.rootfs.slotSize, `${slot} is a rootfs slot`);
  }
  assert.ok(s.rootfs.linkdBudget > 0 && s.rootfs.linkdBudget < s.rootfs.slotSize);
  assert.is(s.rootfs.slotSize % s.rootfs.blockSize, 0);
});

test("mtdparts.txt and partitions.md say what storage.json says", () => {
  const s = storage();
  const lines = read("mtdparts.txt").split("\n").map((l) => l.trim()).filter((l) =>
    l !== "" && !l.startsWith("#")
  );
  assert.is(lines.length, 1);
  const m = /^mtdparts=(.+)$/.exec(lines[0]!);
  assert.ok(m, lines[0]);
  const [nor, nand, ...more] = m![1]!.split(";");
  assert.is(more.length, 0);
  const n = parseMtdDevice(nor!, s.nor.size);
  assert.is(n.dev, s.nor.mtdDevice);
  assert.equal(
    n.parts,
    s.nor.partitions.map(({ name, offset, size, ro }) => ({ name, offset, size, ro })),
  );
  const d = parseMtdDevice(nand!, s.nand.size);
  assert.is(d.dev, s.nand.mtdDevice);
  assert.equal(d.parts, [{ name: s.nand.name, offset: 0, size: s.nand.size, ro: false }]);

  const md = read("partitions.md");
  assert.ok(md.includes(lines[0]!), "partitions.md quotes the command line");
  const rows = md.split("\n").filter((l) => l.startsWith("| ")).map((l) =>
    l.split("|").slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, ""))
  );
  for (const p of s.nor.partitions) {
    const row = rows.find((r) => r[0] === `mtd${p.mtd}`);
    assert.ok(row, `partitions.md has a row for mtd${p.mtd}`);
    assert.equal(row!.slice(1, 4), [p.name, hex6(p.offset), hex6(p.size)], `mtd${p.mtd}`);
  }
  const { blocks } = ubi(s);
  for (const v of s.nand.volumes) {
    const row = rows.find((r) => r[0] === String(v.id));
    assert.ok(row, `partitions.md has a row for volume ${v.id}`);
    const size = v.size === null ? "rest" : `${v.size / 2 ** 20} MiB`;
    assert.equal(row!.slice(1, 5), [v.name, size, String(blocks.get(v.name)), v.type], v.name);
  }
  const mib = (b: number) => `${b / 2 ** 20} MiB`;
  assert.ok(md.includes(`**${mib(s.rootfs.linkdBudget)}**`), "partitions.md states the budget");
  assert.ok(md.includes(`A rootfs slot is ${mib(s.rootfs.slotSize)}`), "and the slot");
  assert.ok(md.includes(`${s.rootfs.blockSize / 1024} KiB blocks`), "and the squashfs blocks");
  assert.ok(md.includes("/sys/firmware/linkd/otp"));
  assert.match(read("tmpfiles.d/linkd.conf"), /^z \/sys\/firmware\/linkd\/otp 0400 linkd linkd/m);
});

test.run();
