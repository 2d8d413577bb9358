/**
 * Issue 14's proof, against a real PostgreSQL (test/support/postgres.ts) and the real `linkd`
 * executable on emulated devices:
 * - two stations provisioning at the same time from overlapping serial lists: every serial ends
 *   on exactly one device, no device gets two, a refused device is untouched (it then takes the
 *   station's next serial), the ledger's export names each device once, and python3-nacl
 *   verifies every record's line signature;
 * - a station killed (SIGKILL) at a random moment of `linkd provision` and started again with
 *   the same command: nothing duplicated, nothing lost (the device holds the serial, the ledger
 *   has it confirmed with the device's key), and `linkd ledger verify` says ok.
 * Skipped where PostgreSQL is missing, never on CI (scripts/setup.sh installs it there).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { havePostgres, type Postgres, startPostgres } from "./support/postgres.ts";
import {
  type DeviceDir,
  linkd,
  MAIN,
  makeDevice,
  provisionArgs,
  python,
  snapshot,
  useWork,
} from "./support/cli.ts";
import { prng } from "./support/random.ts";

const available = havePostgres() || Deno.env.get("CI") !== undefined;
const run = available ? test : test.skip;
const work = useWork("linkd-plant-");
const lineKey = `${work}/line.key`;
Deno.writeFileSync(lineKey, new Uint8Array(32).fill(0x4c), { mode: 0o600 });
let pg: Postgres;

if (available) {
  test.before(async () => {
    pg = await startPostgres();
  });
  test.after(async () => {
    await pg?.stop();
  });
}

/** A fresh database per test (the same server). */
async function database(name: string): Promise<string> {
  await pg.psql(`CREATE DATABASE ${name}`);
  return pg.url.replace(/\/postgres(\?|$)/, `/${name}$1`);
}

function provisionAt(d: DeviceDir, serial: string, ledger: string, station: string): string[] {
  return [...provisionArgs(d, { serial, lineKey }), "--ledger", ledger, "--station", station];
}

async function exported(ledger: string): Promise<Record<string, unknown>[]> {
  const r = await linkd(["ledger", "export", "--ledger", ledger], work);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l));
}

run(
  "two stations at once, overlapping serial lists: every serial on exactly one device",
  async () => {
    const ledger = await database("plant_two");
    const serials = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => `SN-P${String(from + i).padStart(4, "0")}`);
    const lists = { "st-a": serials(1, 10), "st-b": serials(5, 14) };
    const got = new Map<string, { station: string; device: DeviceDir; key: string }[]>();
    const refusedUntouched: string[] = [];
    await Promise.all(
      Object.entries(lists).map(async ([station, list]) => {
        let device = makeDevice(work);
        for (const serial of list) {
          const before = snapshot(device);
          const r = await linkd(provisionAt(device, serial, ledger, station), work);
          if (r.code === 0) {
            const report = JSON.parse(r.stdout);
            got.set(serial, [...(got.get(serial) ?? []), {
              station,
              device,
              key: report.device_public_key,
            }]);
            device = makeDevice(work);
            continue;
          }
          // Taken by the other station: refused before the device was touched.
          assert.is(r.code, 73, `${station} ${serial}: ${r.stderr}`);
          assert.match(r.stderr, /ledger|already provisioned/);
          const after = snapshot(device);
          assert.is(after.otp, null, `${serial}: the refused device's OTP stayed blank`);
          assert.equal(after.flash, before.flash);
          refusedUntouched.push(serial);
        }
      }),
    );
    const all = [...new Set([...lists["st-a"], ...lists["st-b"]])].sort();
    assert.equal([...got.keys()].sort(), all, "every serial provisioned");
    for (const [serial, holders] of got) {
      assert.is(
        holders.length,
        1,
        `${serial} on ${holders.length} devices`,
      );
    }
    assert.ok(
      refusedUntouched.length >= 6,
      `the overlap was contended: ${refusedUntouched.length} refusals`,
    );
    const rows = await exported(ledger);
    assert.equal(rows.map((r) => r.serial), all);
    const keys = new Set(rows.map((r) => r.device_public_key));
    assert.is(keys.size, rows.length, "one device key per serial");
    for (const r of rows) assert.is(r.device_public_key, got.get(r.serial as string)![0]!.key);
    const verified = await python(
      `import json, sys
from nacl.signing import VerifyKey
n = 0
for r in json.loads(sys.argv[1]):
    VerifyKey(bytes.fromhex(r["line_public_key"])).verify(bytes.fromhex(r["record"]), bytes.fromhex(r["signature"]))
    n += 1
print(n)`,
      [JSON.stringify(rows)],
    );
    assert.is(verified, all.length);
    const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
    assert.is(v.code, 0, v.stdout + v.stderr);
  },
);

run(
  "a station killed at a random moment and started again: nothing duplicated, nothing lost",
  async () => {
    const ledger = await database("plant_kill");
    const random = prng(0x14c0ffee);
    const serials = Array.from({ length: 12 }, (_, i) => `SN-K${String(i + 1).padStart(4, "0")}`);
    const outcomes: string[] = [];
    // How long one provisioning takes here, start to exit: the kills land inside that span.
    const t0 = performance.now();
    const warm = await linkd(provisionAt(makeDevice(work), "SN-K0000", ledger, "st-k"), work);
    assert.is(warm.code, 0, warm.stderr);
    const span = performance.now() - t0;
    let landed = 0;
    for (const serial of serials) {
      const device = makeDevice(work);
      const args = provisionAt(device, serial, ledger, "st-k");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-prompt", MAIN, ...args],
        cwd: work,
        stdout: "null",
        stderr: "null",
        env: { NO_COLOR: "1" },
      }).spawn();
      // Anywhere from module loading to after the ledger's confirmation.
      const delay = Math.floor(span * (0.2 + 0.6 * random()));
      await new Promise((r) => AbortSignal.timeout(delay).addEventListener("abort", r));
      try {
        child.kill("SIGKILL");
      } catch { /* it had finished */ }
      const killed = await child.status;
      if (killed.signal === "SIGKILL") landed++;
      // The station starts again with the same command.
      const again = await linkd(args, work);
      assert.ok(
        again.code === 0 || again.code === 73,
        `${serial} after a kill at ${delay} ms: ${again.stderr}`,
      );
      if (again.code === 73) {
        assert.match(
          again.stderr,
          new RegExp(`already provisioned as serial ${serial}`),
        );
      }
      const note = /resumed/.test(again.stderr)
        ? "(resumed)"
        : /confirmed from its record/.test(again.stderr)
        ? "(recovered)"
        : /interrupted provisioning/.test(again.stderr)
        ? "(otp kept)"
        : "";
      outcomes.push(`${delay}ms:${killed.signal ?? killed.code}->${again.code}${note}`);
      const st = await linkd(["status", "--config", device.config, "--json"], work);
      const status = JSON.parse(st.stdout);
      assert.is(status.serial, serial, `${serial}: the device holds it (${outcomes.at(-1)})`);
      const rows = await exported(ledger);
      const row = rows.find((r) => r.serial === serial);
      assert.ok(row, `${serial} is in the ledger, confirmed (${outcomes.at(-1)})`);
      assert.is(row!.device_public_key, status.device_public_key);
    }
    assert.ok(
      landed >= serials.length / 3,
      `a third of the kills landed mid-run: ${outcomes.join(" ")}`,
    );
    const rows = await exported(ledger);
    assert.equal(rows.map((r) => r.serial), ["SN-K0000", ...serials], outcomes.join(" "));
    if (Deno.env.get("LINKD_TEST_VERBOSE")) console.log(outcomes.join(" "));
    const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
    assert.is(v.code, 0, `${v.stdout}${v.stderr} (${outcomes.join(" ")})`);
  },
);

run(
  "repair on the plant's PostgreSQL: the row takes the repaired device's new record",
  async () => {
    const ledger = await database("plant_repair");
    const d = makeDevice(work);
    const first = await linkd(provisionAt(d, "SN-RP001", ledger, "st-a"), work);
    assert.is(first.code, 0, first.stderr);
    const [before] = await exported(ledger);
    Deno.writeFileSync(d.flash, new Uint8Array(Deno.statSync(d.flash).size).fill(0xff));
    const r = await linkd(
      ["repair", ...provisionAt(d, "SN-RP001", ledger, "st-rework").slice(1)],
      work,
    );
    assert.is(r.code, 0, r.stderr);
    const [after] = await exported(ledger);
    assert.is(after!.device_public_key, before!.device_public_key);
    assert.is.not(after!.record, before!.record);
    assert.is(after!.signature, JSON.parse(r.stdout).line_signature);
    const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
    assert.is(v.code, 0, v.stdout + v.stderr);
  },
);

test.run();
