/**
 * The files linkd reads and writes, as the `linkd` executable meets them (issue 11): a FIFO,
 * socket or device where a file belongs, a full disk (a real tmpfs), a `--record-out` that
 * exists, a line key others may read, a bus prefix the bus refuses, and a flash held by a
 * running linkd. Every run that could hang has a deadline after which it is killed (SIGKILL:
 * a process that ignores SIGTERM must not hang the test too), and a killed run fails the test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  assertFails,
  assertSameBytes,
  CONFIG_TEXT,
  type DeviceDir,
  exists,
  listing,
  MAIN,
  makeDevice,
  oneJsonLine,
  type Run,
  show,
  snapshot,
} from "./support/cli.ts";
import { fullDisk, ifTmpfs } from "./support/full_disk.ts";

const work = Deno.makeTempDirSync({ prefix: "linkd-files-test-" });
test.after(() => Deno.removeSync(work, { recursive: true }));

const decoder = new TextDecoder();
/** Longer than any of these runs takes on a loaded machine; a hang is killed at it. */
const DEADLINE_MS = 60_000;

function spawn(args: readonly string[], cwd = work): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, ...args],
    cwd,
    env: { NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `linkd ARGS`; a run still going at DEADLINE_MS is killed and fails the test. */
async function linkd(args: readonly string[], cwd = work): Promise<Run> {
  const child = spawn(args, cwd);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, DEADLINE_MS);
  const out = await child.output();
  clearTimeout(timer);
  const run = {
    args,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  assert.not.ok(killed, `hung until killed: ${show(run)}`);
  return run;
}

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: ["-m", "600", path] }).output();
  assert.is(r.code, 0, `mkfifo ${path}`);
}

/** A device folder whose config names the flash, the OTP and `bus`, next to it. */
function device(bus: Record<string, unknown> = {}): DeviceDir {
  const d = makeDevice(work);
  Deno.writeTextFileSync(`${d.dir}/bus.pass`, "");
  Deno.writeTextFileSync(
    d.config,
    JSON.stringify({
      flash: { path: "flash.img" },
      keys: { otpPath: "otp.bin" },
      bus: { url: "mqtt://127.0.0.1:1", passwordFile: "bus.pass", ...bus },
    }),
  );
  return d;
}

const P = (d: DeviceDir, serial: string, ...more: string[]) => [
  "provision",
  "--config",
  d.config,
  "--serial",
  serial,
  "--product-id",
  "P",
  "--client-id",
  "amzn1.application-oa2-client.files",
  ...more,
];

// ---- a FIFO, socket or device where a file belongs ------------------------------------------

// open(2) of a FIFO waits for a writer; a synchronous open blocked the one JavaScript thread,
// and `linkd run` (SIGTERM handler installed) then ignored SIGTERM for ever.
test("linkd run with a FIFO as config, bus password or OTP: one line and its code, no hang", async () => {
  const config = device();
  Deno.removeSync(config.config);
  await mkfifo(config.config);
  const password = device();
  Deno.removeSync(`${password.dir}/bus.pass`);
  await mkfifo(`${password.dir}/bus.pass`);
  const otp = device();
  await mkfifo(otp.otp);

  const [c, p, o] = await Promise.all([
    linkd(["run", "--config", config.config]),
    linkd(["run", "--config", password.config]),
    linkd(["run", "--config", otp.config]),
  ]);
  assert.match(assertFails(c, 78, config.config), /it is a FIFO, not a regular file$/);
  const pl = assertFails(p, 78, `bus.passwordFile ${password.dir}/bus.pass`);
  assert.match(pl, /it is a FIFO, not a regular file$/);
  assert.match(assertFails(o, 65, `OTP key store ${otp.otp}`), /a FIFO, not a regular file$/);
});

test("a FIFO or a device as line key or flash: exit 65, nothing written, no hang", async () => {
  const d = device();
  const key = `${d.dir}/line.key`;
  await mkfifo(key);
  const r = await linkd(P(d, "SN-FIFO", "--line-key", key));
  assert.match(assertFails(r, 65, `line key ${key}`), /a FIFO, not a regular file$/);
  assert.is(
    assertFails(await linkd(P(d, "SN-DEV", "--line-key", "/dev/zero")), 65),
    "linkd: Cannot read line key /dev/zero: it is a character device, not a regular file",
  );
  assert.not.ok(exists(d.otp) || exists(d.flash), "refused before the device is touched");

  const f = device();
  await mkfifo(f.flash);
  const status = ["status", "--json", "--config", f.config];
  const writers = [P(f, "SN-F"), ["logout", "--config", f.config], ["run", "--config", f.config]];
  for (const args of [status, ...writers]) {
    const line = assertFails(await linkd(args), 65, `flash ${f.flash}`);
    assert.match(line, /it is a FIFO, not a regular file; this build drives emulated parts only/);
  }
  assert.not.ok(exists(f.otp), "the OTP is not programmed");
});

test("linkd run honours SIGTERM while it waits for the bus: offline and exit 0", async () => {
  const d = device();
  const child = spawn(["run", "--config", d.config]);
  const timer = setTimeout(() => child.kill("SIGKILL"), DEADLINE_MS);
  // Wait for the first log line: the daemon is up, its bus retrying the closed port.
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/bus: cannot connect to mqtt:\/\/127\.0\.0\.1:1.*\n/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  assert.match(seen, /bus: cannot connect to mqtt:\/\/127\.0\.0\.1:1/, seen);
  child.kill("SIGTERM");
  const status = await child.status;
  clearTimeout(timer);
  reader.releaseLock();
  await child.stderr.cancel().catch(() => {});
  await child.stdout.cancel();
  assert.is(status.signal, null, "ended by SIGTERM's handler, not killed");
  assert.is(status.code, 0);
});

// ---- a full disk ---------------------------------------------------------------------------

/** A device folder whose flash and OTP live in `mnt` (a tmpfs); the config stays outside. */
function deviceIn(mnt: string): DeviceDir {
  const d = makeDevice(work);
  Deno.writeTextFileSync(
    d.config,
    JSON.stringify({ flash: { path: `${mnt}/flash.img` }, keys: { otpPath: `${mnt}/otp.bin` } }),
  );
  return { ...d, flash: `${mnt}/flash.img`, otp: `${mnt}/otp.bin` };
}

async function remount(mnt: string, kib: number): Promise<void> {
  const r = await new Deno.Command("mount", { args: ["-o", `remount,size=${kib}k`, mnt] }).output();
  assert.is(r.code, 0, "remount");
}

// Before: exit 70 "internal error", and the partial flash file made every later command 78.
ifTmpfs(test)(
  "a full disk while creating the flash: exit 66, no partial file, fine once there is room",
  async () => {
    await fullDisk(async (mnt) => {
      const d = deviceIn(mnt);
      for (const args of [P(d, "SN-FULL"), ["logout", "--config", d.config]]) {
        const line = assertFails(await linkd(args), 66, `Cannot create flash ${d.flash}`);
        assert.match(line, /no space left on the device \(ENOSPC\); nothing was left behind/);
        assert.equal(listing(mnt), [], "no flash file, no temporary file");
      }
      // An empty flash file someone made is filled in place: cut back to empty on failure.
      Deno.writeFileSync(d.flash, new Uint8Array(0));
      assertFails(await linkd(P(d, "SN-FULL")), 66, `Cannot create flash ${d.flash}`);
      assert.is(Deno.statSync(d.flash).size, 0, "left empty, as it was");
      await remount(mnt, 128);
      const r = await linkd(P(d, "SN-FULL"));
      assert.is(r.code, 0, show(r));
      assert.is(Deno.statSync(d.flash).size, 65536);
    }, 32);
  },
);

ifTmpfs(test)(
  "a full disk while programming the OTP: exit 66, the OTP left blank, flash untouched",
  async () => {
    await fullDisk(async (mnt) => {
      const d = deviceIn(mnt);
      Deno.writeFileSync(d.flash, new Uint8Array(65536).fill(0xff));
      const filler = `${mnt}/filler`;
      Deno.writeFileSync(filler, new Uint8Array(4096)); // the last free page
      const before = snapshot(d);
      const line = assertFails(await linkd(P(d, "SN-OTP")), 66, `OTP key store ${d.otp}`);
      assert.match(line, /no space left on the device \(ENOSPC\); it was left blank$/);
      assert.equal(listing(mnt), ["filler", "flash.img"], "no OTP file, no temporary file");
      assertSameBytes(snapshot(d).flash, before.flash, "flash");
      // An empty OTP file (a blank part) is written in place: cut back to empty on failure.
      Deno.writeFileSync(d.otp, new Uint8Array(0));
      assertFails(await linkd(P(d, "SN-OTP")), 66, `OTP key store ${d.otp}`);
      assert.is(Deno.statSync(d.otp).size, 0, "still blank");
      Deno.removeSync(filler);
      const r = await linkd(P(d, "SN-OTP"));
      assert.is(r.code, 0, show(r));
      assert.is(
        oneJsonLine(await linkd(["status", "--json", "--config", d.config])).serial,
        "SN-OTP",
      );
    }, 68);
  },
);

ifTmpfs(test)(
  "a full disk while writing --record-out: exit 66, no record file; the retry writes it",
  async () => {
    await fullDisk(async (mnt) => {
      const d = device();
      const out = `${mnt}/record.cbor`;
      const filler = `${mnt}/filler`;
      Deno.writeFileSync(filler, new Uint8Array(4096));
      const line = assertFails(await linkd(P(d, "SN-REC", "--record-out", out)), 66, out);
      assert.match(line, /no space left on the device \(ENOSPC\)/);
      assert.equal(listing(mnt), ["filler"], "no record file, no temporary file");
      Deno.removeSync(filler);
      const r = await linkd(P(d, "SN-REC", "--record-out", out));
      assert.is(r.code, 0, show(r));
      assert.ok(Deno.statSync(out).size > 100, "the signed record is there");
    }, 4);
  },
);

// ---- the line's records and inputs ---------------------------------------------------------

test("--record-out that exists: exit 64 before the device is touched, the file kept", async () => {
  const d = device();
  const out = `${d.dir}/record.cbor`;
  Deno.writeTextFileSync(out, "another device's signed record");
  const line = assertFails(await linkd(P(d, "SN-RO", "--record-out", out)), 64, out);
  assert.match(line, /never overwritten; pass a new --record-out path$/);
  assert.is(Deno.readTextFileSync(out), "another device's signed record");
  assert.not.ok(exists(d.flash) || exists(d.otp), "the device is not touched");
  const dangling = `${d.dir}/dangling.cbor`;
  Deno.symlinkSync(`${d.dir}/elsewhere.cbor`, dangling);
  assertFails(await linkd(P(d, "SN-RO", "--record-out", dangling)), 64, dangling);
  assert.not.ok(exists(`${d.dir}/elsewhere.cbor`), "nothing written through the link");

  // A provisioned device: the same refusal, the device and the file byte for byte the same.
  const first = `${d.dir}/first.cbor`;
  const ok = await linkd(P(d, "SN-RO", "--record-out", first));
  assert.is(ok.code, 0, show(ok));
  const record = Deno.readFileSync(first);
  const before = snapshot(d);
  assertFails(await linkd(P(d, "SN-RO2", "--record-out", first)), 64, first);
  assertSameBytes(Deno.readFileSync(first), record, "the first record");
  assertSameBytes(snapshot(d).flash, before.flash, "flash");
  assertSameBytes(snapshot(d).otp, before.otp, "OTP");
});

test("a line key group or others may read or write: exit 65 naming the mode and chmod 600", async () => {
  const d = device();
  const key = `${d.dir}/line.key`;
  Deno.writeFileSync(key, crypto.getRandomValues(new Uint8Array(32)));
  for (const mode of [0o644, 0o640, 0o604, 0o620]) {
    Deno.chmodSync(key, mode);
    const line = assertFails(await linkd(P(d, "SN-KEY", "--line-key", key)), 65, key);
    const shown = mode.toString(8).padStart(4, "0");
    assert.ok(
      line.endsWith(
        `its mode ${shown} lets group or others read or write it; run chmod 600 ${key}`,
      ),
      line,
    );
  }
  assert.not.ok(exists(d.flash) || exists(d.otp), "refused before the device is touched");
  Deno.chmodSync(key, 0o600);
  const r = await linkd(P(d, "SN-KEY", "--line-key", key));
  assert.is(r.code, 0, show(r));
  assert.ok("line_signature" in oneJsonLine(r));
});

// Before: config.ts took up to 200 characters, the bus at most 64: `linkd run` exit 70.
test("a 100-character bus.prefix is exit 78 naming bus.prefix at config load", async () => {
  const d = device({ prefix: "p".repeat(100) });
  for (const args of [["run", "--config", d.config], ["status", "--config", d.config]]) {
    const line = assertFails(await linkd(args), 78, '"bus.prefix"');
    assert.match(line, /must be an MQTT topic prefix: at most 64 characters, not 100/);
  }
  assert.not.ok(exists(d.flash), "nothing opened");
  const ok = device({ prefix: "p".repeat(64) });
  assert.is((await linkd(["status", "--json", "--config", ok.config])).code, 0);
});

// ---- a flash in use by a running linkd -----------------------------------------------------

test("a flash held by a running linkd: exit 75; the bus is advised only for logout", async () => {
  const d = makeDevice(work, CONFIG_TEXT);
  const ok = await linkd(P(d, "SN-BUSY"));
  assert.is(ok.code, 0, show(ok));
  // The daemon holds an exclusive lock on the flash file while it runs; so does this test.
  const held = Deno.openSync(d.flash, { read: true, write: true });
  held.lockSync(true);
  try {
    const [logout, reset, prov] = await Promise.all([
      linkd(["logout", "--config", d.config]),
      linkd(["factory-reset", "--config", d.config]),
      linkd(P(d, "SN-BUSY")),
    ]);
    const busy = `linkd: Cannot open flash ${d.flash}: it is in use by a running linkd; `;
    assert.is(
      assertFails(logout, 75),
      `${busy}stop it first, or send linkd/cmd/logout on the bus`,
    );
    for (const r of [reset, prov]) {
      assert.is(assertFails(r, 75), `${busy}stop it first, then run this again`);
    }
  } finally {
    held.close();
  }
});

test.run();
