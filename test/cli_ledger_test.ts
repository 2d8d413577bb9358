/**
 * `linkd provision --ledger sqlite:... --station ...` and `linkd ledger export|verify`, as real
 * subprocesses on emulated devices (issue 14, the station's embedded ledger): the serial is
 * reserved before the device is written and confirmed after; a serial the ledger has for another
 * device is 73 with the device byte for byte as it was; a station resumes its own reservation;
 * a device that committed before its station died confirms the reservation from its own record;
 * the export's records and signatures verify with python3-nacl and are the bytes of
 * `--record-out`; verify says ok, or lists what is wrong and exits 65.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  assertFails,
  assertSameBytes,
  type DeviceDir,
  linkd,
  makeDevice,
  oneJsonLine,
  provisionArgs,
  python,
  snapshot,
  useWork,
} from "./support/cli.ts";
import { LINE } from "./support/ledger.ts";
import { decodeCbor } from "../src/cbor.ts";
import { toHex } from "../src/bytes.ts";

const work = useWork("linkd-cli-ledger-");
const lineKey = `${work}/line.key`;
Deno.writeFileSync(lineKey, new Uint8Array(32).fill(0x4c), { mode: 0o600 });

function provisionAt(
  d: DeviceDir,
  serial: string,
  ledger: string,
  station: string,
  more: string[] = [],
) {
  return linkd(
    [...provisionArgs(d, { serial, lineKey }), "--ledger", ledger, "--station", station, ...more],
    work,
  );
}

async function exportOf(ledger: string): Promise<Record<string, unknown>[]> {
  const r = await linkd(["ledger", "export", "--ledger", ledger], work);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l));
}

/** Runs SQL on a ledger file, as another tool (or a DBA) would. */
async function sql(ledger: string, statement: string, ...params: (string | number | null)[]) {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(ledger.slice("sqlite:".length));
  try {
    db.prepare(statement).run(...params);
  } finally {
    db.close();
  }
}

test("three devices at one station: exported, verified by python3-nacl, as --record-out wrote", async () => {
  const ledger = `sqlite:${work}/plant-a.db`;
  const out = `${work}/SN-A0001.cbor`;
  const reports = [];
  for (const [i, serial] of ["SN-A0001", "SN-A0002", "SN-A0003"].entries()) {
    const d = makeDevice(work);
    reports.push(
      oneJsonLine(
        await provisionAt(d, serial, ledger, "st-1", i === 0 ? ["--record-out", out] : []),
      ),
    );
  }
  const rows = await exportOf(ledger);
  assert.equal(rows.map((r) => r.serial), ["SN-A0001", "SN-A0002", "SN-A0003"]);
  for (const [i, r] of rows.entries()) {
    assert.is(r.station, "st-1");
    assert.is(r.device_public_key, reports[i]!.device_public_key);
    assert.is(r.line_public_key, toHex(LINE.publicKey));
    assert.ok(Number.isSafeInteger(r.provisioned_at));
  }
  // The record and signature are the bytes the device's --record-out got.
  const env = decodeCbor(Deno.readFileSync(out), "record-out") as Record<string, Uint8Array>;
  assert.is(rows[0]!.record, toHex(env.record!));
  assert.is(rows[0]!.signature, toHex(env.signature!));
  // An independent peer checks every signature over exactly the record bytes.
  const ok = await python(
    `import json, sys
from nacl.signing import VerifyKey
rows = json.loads(sys.argv[1])
out = []
for r in rows:
    VerifyKey(bytes.fromhex(r["line_public_key"])).verify(bytes.fromhex(r["record"]), bytes.fromhex(r["signature"]))
    out.append(r["serial"])
print(json.dumps(out))`,
    [JSON.stringify(rows)],
  );
  assert.equal(ok, ["SN-A0001", "SN-A0002", "SN-A0003"]);
  const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
  assert.is(v.code, 0, v.stderr);
  assert.match(v.stdout, /^ok: 3 devices, every record signed by a line key and verified/);
});

test("a serial the ledger has is 73 at any station, the device byte for byte as it was", async () => {
  const ledger = `sqlite:${work}/plant-b.db`;
  oneJsonLine(await provisionAt(makeDevice(work), "SN-B0001", ledger, "st-1"));
  for (const station of ["st-1", "st-2"]) {
    const d = makeDevice(work);
    const before = snapshot(d);
    assertFails(await provisionAt(d, "SN-B0001", ledger, station), 73, "SN-B0001");
    const after = snapshot(d);
    assertSameBytes(after.flash, before.flash, "flash");
    assertSameBytes(after.otp, before.otp, "otp");
  }
  // Reserved (not yet confirmed) by st-1: st-2 is refused, the device untouched.
  await sql(
    ledger,
    "INSERT INTO linkd_devices (serial, product_id, client_id, station, reserved_at) VALUES (?, ?, ?, ?, ?)",
    "SN-B0002",
    "Echo_Mini-1",
    "amzn1.application-oa2-client.5f3c0ffee0",
    "st-1",
    Date.now(),
  );
  const d = makeDevice(work);
  const line = assertFails(
    await provisionAt(d, "SN-B0002", ledger, "st-2"),
    73,
    "station st-1 reserved it",
  );
  assert.match(line, /nothing was written to this device/);
  assert.is(snapshot(d).otp, null);
  // st-1 resumes its own reservation.
  const r = await provisionAt(d, "SN-B0002", ledger, "st-1");
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).serial, "SN-B0002");
  assert.match(
    r.stderr,
    /SN-B0002 was reserved by this station in the ledger and not confirmed; resumed/,
  );
  assert.equal((await exportOf(ledger)).map((x) => x.serial), ["SN-B0001", "SN-B0002"]);
});

test("a device that committed before its station died: the reservation is confirmed from it", async () => {
  const ledger = `sqlite:${work}/plant-c.db`;
  const d = makeDevice(work);
  const first = oneJsonLine(await provisionAt(d, "SN-C0001", ledger, "st-1"));
  // As if the station died between the device's commit and the ledger's confirmation.
  await sql(
    ledger,
    "UPDATE linkd_devices SET device_public_key = NULL, record = NULL, signature = NULL, line_public_key = NULL, provisioned_at = NULL WHERE serial = ?",
    "SN-C0001",
  );
  assert.equal(await exportOf(ledger), []);
  const again = await provisionAt(d, "SN-C0001", ledger, "st-1");
  assert.is(again.code, 73, again.stderr);
  assert.match(
    again.stderr,
    /this station's reservation in the ledger was confirmed from its record/,
  );
  const rows = await exportOf(ledger);
  assert.is(rows.length, 1);
  assert.is(rows[0]!.device_public_key, first.device_public_key);
  const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
  assert.is(v.code, 0, v.stdout + v.stderr);
});

test("repair --ledger: the repaired device's new record replaces its row; verify ok", async () => {
  const ledger = `sqlite:${work}/plant-r.db`;
  const d = makeDevice(work);
  const first = oneJsonLine(await provisionAt(d, "SN-R0001", ledger, "st-1"));
  const [before] = await exportOf(ledger);
  Deno.writeFileSync(d.flash, new Uint8Array(Deno.statSync(d.flash).size).fill(0xff)); // lost
  const args = (station: string) => [
    "repair",
    ...provisionArgs(d, { serial: "SN-R0001", lineKey }).slice(1),
    "--ledger",
    ledger,
    "--station",
    station,
  ];
  const r = await linkd(args("st-rework"), work);
  assert.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.is(report.device_public_key, first.device_public_key);
  const [after] = await exportOf(ledger);
  assert.is(after!.device_public_key, before!.device_public_key);
  assert.is.not(after!.record, before!.record, "the new record (a new provisioned_at)");
  assert.is(after!.signature, report.line_signature);
  const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
  assert.is(v.code, 0, v.stdout + v.stderr);
  // A ledger with the serial on another device refuses the repair before the device is touched.
  await sql(
    ledger,
    "UPDATE linkd_devices SET device_public_key = zeroblob(32) WHERE serial = ?",
    "SN-R0001",
  );
  Deno.writeFileSync(d.flash, new Uint8Array(Deno.statSync(d.flash).size).fill(0xff));
  const snap = snapshot(d);
  assertFails(await linkd(args("st-rework"), work), 73, "on another device");
  assertSameBytes(snapshot(d).flash, snap.flash, "flash");
});

test("verify lists what is wrong and exits 65; --since exports the newer devices", async () => {
  const ledger = `sqlite:${work}/plant-d.db`;
  for (const s of ["SN-D0001", "SN-D0002", "SN-D0004"]) {
    oneJsonLine(await provisionAt(makeDevice(work), s, ledger, "st-1"));
  }
  const ok = await linkd(["ledger", "verify", "--ledger", ledger], work);
  assert.is(ok.code, 65, ok.stdout); // SN-D0003 is missing from the series
  assert.match(ok.stdout, /^SN-D0003: gap: no device has this serial, between two that have$/m);
  await sql(
    ledger,
    "UPDATE linkd_devices SET signature = zeroblob(64) WHERE serial = ?",
    "SN-D0002",
  );
  const bad = await linkd(["ledger", "verify", "--ledger", ledger], work);
  assert.is(bad.code, 65);
  assert.match(bad.stdout, /^SN-D0002: the line signature does not verify$/m);
  assert.match(bad.stderr, /^linkd: Cannot vouch for the plant's ledger: 2 problems in 3 rows/);
  const all = await exportOf(ledger);
  const last = all.at(-1)!.provisioned_at as number;
  const since = await linkd(
    ["ledger", "export", "--ledger", ledger, "--since", String(last)],
    work,
  );
  assert.is(since.code, 0);
  assert.ok(since.stdout.trim().split("\n").every((l) => JSON.parse(l).provisioned_at >= last));
  const future = await linkd([
    "ledger",
    "export",
    "--ledger",
    ledger,
    "--since",
    "2999-01-01T00:00:00Z",
  ], work);
  assert.is(future.stdout, "");
});

test("an unreachable ledger is 69 and a bad one 64, before the device is touched", async () => {
  const d = makeDevice(work);
  assertFails(
    await provisionAt(d, "SN-E0001", `sqlite:${work}/no/such/dir/l.db`, "st-1"),
    69,
    "ledger",
  );
  assert.is(snapshot(d).otp, null);
  assertFails(await provisionAt(d, "SN-E0001", "mysql://x/y", "st-1"), 64, "--ledger");
  assertFails(
    await provisionAt(d, "SN-E0001", `sqlite:${work}/e.db`, "bad station"),
    64,
    "station",
  );
  assertFails(
    await linkd(
      [...provisionArgs(d, { serial: "SN-E0001" }), "--ledger", `sqlite:${work}/e.db`],
      work,
    ),
    64,
    "--station",
  );
  assert.is(snapshot(d).otp, null);
});

test.run();
