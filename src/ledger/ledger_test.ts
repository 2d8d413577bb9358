/**
 * The ledger's rules (ledger.ts) on the embedded engine (sqlite.ts, a real SQLite file): a
 * serial is taken once, a station resumes only its own reservation, a device key is recorded
 * under one serial, a confirmation is idempotent, a committed device recovers its reservation,
 * two connections racing for serials never both win one, and a row that is not a ledger row is
 * LEDGER_DATA, not a crash.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, Exit, LinkdError } from "../errors.ts";
import { Ledger } from "./ledger.ts";
import { openSqliteLedger } from "./sqlite.ts";
import { parseLedgerUrl } from "./open.ts";
import { signedDevice } from "../../test/support/ledger.ts";

const dir = Deno.makeTempDirSync({ prefix: "linkd-ledger-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));
let n = 0;

async function fresh(): Promise<{ ledger: Ledger; path: string }> {
  const path = `${dir}/l${n++}.db`;
  return { ledger: new Ledger(await openSqliteLedger(path)), path };
}

function reservation(serial: string, station: string, productId = "speaker") {
  return {
    serial,
    product_id: productId,
    client_id: "amzn1.application-oa2-client.line",
    station,
    reserved_at: 1_790_000_000_000,
  };
}

async function refused(p: Promise<unknown>, code: string, mentions: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, LinkdError);
    assert.is((e as LinkdError).code, code, (e as Error).message);
    assert.match((e as Error).message, mentions);
    assert.not.match((e as Error).message, "\n");
    return (e as Error).message;
  }
  throw new Error(`expected ${code}`);
}

test("a serial is reserved once; its station resumes it; another station is refused with 73", async () => {
  const { ledger } = await fresh();
  assert.is(await ledger.reserve(reservation("SN-1", "st-a")), "new");
  assert.is(await ledger.reserve(reservation("SN-1", "st-a")), "resumed");
  const msg = await refused(
    ledger.reserve(reservation("SN-1", "st-b")),
    Code.LEDGER_TAKEN,
    /station st-a reserved it .*nothing was written to this device/,
  );
  assert.is(new LinkdError(Code.LEDGER_TAKEN, msg).exitCode, Exit.CANTCREAT);
  await refused(
    ledger.reserve(reservation("SN-1", "st-a", "other-product")),
    Code.LEDGER_TAKEN,
    /reserved it for product speaker/,
  );
  await ledger.close();
});

test("confirm records the device; again is a no-op; the serial is then taken for everyone", async () => {
  const { ledger } = await fresh();
  await ledger.reserve(reservation("SN-2", "st-a"));
  const dev = signedDevice("SN-2", 2);
  await ledger.confirm("st-a", dev);
  await ledger.confirm("st-a", dev); // a retry after a lost answer
  const [row] = await ledger.rows();
  assert.is(row!.provisioned_at, dev.identity.provisioned_at);
  assert.equal(row!.record, dev.record);
  assert.equal(row!.signature, dev.signature);
  await refused(
    ledger.reserve(reservation("SN-2", "st-a")),
    Code.LEDGER_TAKEN,
    /has it on the device provisioned at station st-a at 2026-/,
  );
  await refused(ledger.reserve(reservation("SN-2", "st-b")), Code.LEDGER_TAKEN, /SN-2/);
  // Another record for a confirmed serial is not taken quietly.
  await refused(
    ledger.confirm("st-a", signedDevice("SN-2", 9)),
    Code.LEDGER_DATA,
    /holds another record/,
  );
  await ledger.close();
});

test("a device key is recorded under one serial only", async () => {
  const { ledger } = await fresh();
  await ledger.reserve(reservation("SN-3", "st-a"));
  await ledger.reserve(reservation("SN-4", "st-a"));
  await ledger.confirm("st-a", signedDevice("SN-3", 3));
  await refused(
    ledger.confirm("st-a", signedDevice("SN-4", 3)),
    Code.LEDGER_TAKEN,
    /device key [0-9a-f]{16}… is already recorded under another serial/,
  );
  const rows = await ledger.rows();
  assert.is(rows.find((r) => r.serial === "SN-4")!.provisioned_at, null);
  await ledger.close();
});

test("confirm needs this station's open reservation", async () => {
  const { ledger } = await fresh();
  await refused(
    ledger.confirm("st-a", signedDevice("SN-5", 5)),
    Code.LEDGER_DATA,
    /no reservation/,
  );
  await ledger.reserve(reservation("SN-5", "st-b"));
  await refused(
    ledger.confirm("st-a", signedDevice("SN-5", 5)),
    Code.LEDGER_DATA,
    /station st-b holds its reservation/,
  );
  await ledger.close();
});

test("recover: a device that committed before its station died confirms the reservation", async () => {
  const { ledger } = await fresh();
  const dev = signedDevice("SN-6", 6);
  await ledger.reserve(reservation("SN-6", "st-a"));
  assert.is(await ledger.recover("st-b", dev), null); // not this station's
  assert.is(await ledger.recover("st-a", dev), "confirmed");
  assert.is(await ledger.recover("st-a", dev), "recorded");
  assert.is(await ledger.recover("st-a", signedDevice("SN-6", 7)), null); // another device
  await ledger.close();
});

test("recover: a device whose serial the ledger lost is recorded from the device's record", async () => {
  const { ledger } = await fresh();
  const dev = signedDevice("SN-8", 8);
  assert.is(await ledger.recover("st-a", dev), "confirmed");
  const [row] = await ledger.rows();
  assert.is(row!.station, "st-a");
  assert.equal(row!.record, dev.record);
  assert.is(row!.reserved_at, dev.identity.provisioned_at);
  assert.is(await ledger.recover("st-a", dev), "recorded");
  await ledger.close();
});

test("repair: the ledger takes the device's new record; another device's serial is refused", async () => {
  const { ledger } = await fresh();
  await ledger.reserve(reservation("SN-9", "st-a"));
  const first = signedDevice("SN-9", 9, 1_790_000_000_000);
  await ledger.confirm("st-a", first);
  const again = signedDevice("SN-9", 9, 1_790_000_500_000); // repaired: same key, new record
  await ledger.checkRepair("SN-9", again.identity.device_public_key);
  await ledger.repaired("st-r", again);
  const [row] = await ledger.rows();
  assert.equal(row!.record, again.record);
  assert.is(row!.provisioned_at, 1_790_000_500_000);
  assert.is(row!.station, "st-a"); // the station that provisioned it
  await refused(
    ledger.checkRepair("SN-9", signedDevice("SN-9", 10).identity.device_public_key),
    Code.LEDGER_TAKEN,
    /has it on another device .*nothing was written to this device/,
  );
  await refused(
    ledger.repaired("st-r", signedDevice("SN-9", 10)),
    Code.LEDGER_DATA,
    /holds another device for it/,
  );
  // A serial the ledger never had is recorded by the repair.
  await ledger.repaired("st-r", signedDevice("SN-10", 11));
  assert.is((await ledger.rows()).find((r) => r.serial === "SN-10")!.station, "st-r");
  await ledger.close();
});

test("two connections racing for the same serials: each serial is won exactly once", async () => {
  const { path } = await fresh();
  const a = new Ledger(await openSqliteLedger(path));
  const b = new Ledger(await openSqliteLedger(path));
  const serials = Array.from({ length: 40 }, (_, i) => `SN-R${String(i).padStart(3, "0")}`);
  const won: string[] = [];
  await Promise.all([a, b].map(async (l, k) => {
    for (const s of serials) {
      try {
        if (await l.reserve(reservation(s, `st-${k}`)) === "new") won.push(s);
      } catch (e) {
        assert.is((e as LinkdError).code, Code.LEDGER_TAKEN);
      }
    }
  }));
  assert.equal([...won].sort(), serials);
  assert.is((await a.rows()).length, serials.length);
  await a.close();
  await b.close();
});

test("a row that is not a ledger row (written by another tool) is LEDGER_DATA", async () => {
  const { ledger, path } = await fresh();
  await ledger.close();
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  db.prepare(
    "INSERT INTO linkd_devices (serial, product_id, client_id, station, reserved_at, device_public_key, record, provisioned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  ).run("SN-BAD", "p", "c", "st", 1, new Uint8Array(5), new Uint8Array(10), 2);
  db.close();
  const again = new Ledger(await openSqliteLedger(path));
  const msg = await refused(again.rows(), Code.LEDGER_DATA, /SN-BAD.* malformed device_public_key/);
  assert.is(new LinkdError(Code.LEDGER_DATA, msg).exitCode, Exit.DATAERR);
  await again.close();
});

test("an unusable SQLite path is LEDGER_UNAVAILABLE (69)", async () => {
  const msg = await refused(
    openSqliteLedger(`${dir}/no/such/folder/l.db`),
    Code.LEDGER_UNAVAILABLE,
    /^Cannot open the ledger sqlite:/,
  );
  assert.is(new LinkdError(Code.LEDGER_UNAVAILABLE, msg).exitCode, Exit.UNAVAILABLE);
});

test("parseLedgerUrl(): sqlite:PATH or postgres://, anything else is a usage error", () => {
  assert.equal(parseLedgerUrl("sqlite:/var/lib/line/l.db"), {
    engine: "sqlite",
    path: "/var/lib/line/l.db",
  });
  assert.equal(parseLedgerUrl("postgres://line@db:5432/plant").engine, "postgres");
  assert.equal(parseLedgerUrl("postgresql://line@db/plant").engine, "postgres");
  for (const bad of ["sqlite:", "mysql://x/y", "l.db", "postgres://", "sqlite:a\nb"]) {
    assert.throws(() => parseLedgerUrl(bad), (e: LinkdError) => e.code === Code.USAGE, bad);
  }
});

test.run();
