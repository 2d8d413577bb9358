/**
 * Export and verify (report.ts) on rows made as the line makes them: the export line carries
 * the record bytes and signature the device got; verify finds every kind of problem it names,
 * and nothing in a ledger where all hold.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { fromHex, toHex } from "../bytes.ts";
import { exportLine, verifyRows } from "./report.ts";
import type { LedgerRow } from "./store.ts";
import { LINE, signedDevice } from "../../test/support/ledger.ts";

function row(serial: string, keySeed: number, o: Partial<LedgerRow> = {}): LedgerRow {
  const s = signedDevice(serial, keySeed);
  return {
    serial,
    product_id: s.identity.product_id,
    client_id: s.identity.client_id,
    station: "st-a",
    reserved_at: 1_789_999_999_000,
    device_public_key: s.identity.device_public_key,
    record: s.record,
    signature: s.signature!,
    line_public_key: s.line_public_key!,
    provisioned_at: s.identity.provisioned_at,
    ...o,
  };
}

test("exportLine(): the contract's fields, bytes as hex, the record and signature as signed", () => {
  const r = row("SN-0001", 1);
  const o = JSON.parse(exportLine(r)!);
  assert.equal(Object.keys(o), [
    "serial",
    "product_id",
    "client_id",
    "device_public_key",
    "record",
    "signature",
    "line_public_key",
    "station",
    "provisioned_at",
  ]);
  assert.is(o.serial, "SN-0001");
  assert.is(o.station, "st-a");
  assert.is(o.provisioned_at, r.provisioned_at);
  assert.ok(Number.isSafeInteger(o.provisioned_at));
  assert.ok(nacl.sign.detached.verify(fromHex(o.record)!, fromHex(o.signature)!, LINE.publicKey));
  assert.is(o.line_public_key, toHex(LINE.publicKey));
  // A reservation is not a device yet.
  assert.is(
    exportLine(row("SN-0002", 2, { provisioned_at: null, record: null, device_public_key: null })),
    null,
  );
});

test("verifyRows(): nothing when every row holds", () => {
  assert.equal(verifyRows([row("SN-0001", 1), row("SN-0002", 2), row("SN-0003", 3)]), []);
});

test("verifyRows(): a wrong signature, an unsigned record, a record of another serial", () => {
  const good = row("SN-0001", 1);
  const badSig = row("SN-0002", 2, { signature: new Uint8Array(64).fill(7) });
  const unsigned = row("SN-0003", 3, { signature: null, line_public_key: null });
  const moved = row("SN-0004", 4, { record: row("SN-0009", 4).record });
  const garbage = row("SN-0005", 5, { record: new Uint8Array([1, 2, 3]) });
  const problems = verifyRows([good, badSig, unsigned, moved, garbage]);
  const of = (s: string) => problems.filter((p) => p.serial === s).map((p) => p.what);
  assert.equal(of("SN-0001"), []);
  assert.equal(of("SN-0002"), ["the line signature does not verify"]);
  assert.equal(of("SN-0003"), ["the record is not signed by a line key"]);
  assert.match(of("SN-0004").join(), /does not match its row \(serial\)/);
  assert.equal(of("SN-0005"), ["the record does not decode as an identity record"]);
});

test("verifyRows(): duplicates (a device key or a record under two serials)", () => {
  const a = row("SN-0001", 1);
  const b = row("SN-0002", 2, { device_public_key: a.device_public_key });
  const c = row("SN-0003", 3, { record: a.record, signature: a.signature });
  const problems = verifyRows([a, b, c]);
  assert.ok(
    problems.some((p) =>
      p.serial === "SN-0002" && /duplicate: serial SN-0001 has the same device key/.test(p.what)
    ),
  );
  assert.ok(
    problems.some((p) =>
      p.serial === "SN-0003" && /duplicate: serial SN-0001 has the same record/.test(p.what)
    ),
  );
});

test("verifyRows(): gaps (a reservation never confirmed, holes in a numbered series)", () => {
  const reserved = row("SN-0002", 2, {
    provisioned_at: null,
    record: null,
    device_public_key: null,
    signature: null,
    line_public_key: null,
  });
  const problems = verifyRows([row("SN-0001", 1), reserved, row("SN-0006", 6), row("OTHER-7", 7)]);
  const whats = problems.map((p) => `${p.serial}: ${p.what}`);
  assert.ok(whats.some((w) => /^SN-0002: gap: reserved by station st-a/.test(w)), whats.join("\n"));
  // SN-0002 is only reserved: the confirmed series is 0001, 0006, so 0002 to 0005 are missing.
  assert.ok(
    whats.some((w) => /^SN-0002: gap: no device has the serials SN-0002 to SN-0005 \(4\)/.test(w)),
  );
  assert.not.ok(whats.some((w) => w.startsWith("OTHER")));
});

test("verifyRows(): a long series lists 20 holes, then counts the rest", () => {
  const rows = Array.from(
    { length: 30 },
    (_, i) => row(`SN-${String(i * 2).padStart(4, "0")}`, i + 1),
  );
  const gaps = verifyRows(rows).filter((p) => p.what.startsWith("gap"));
  assert.is(gaps.length, 21);
  assert.match(gaps.at(-1)!.what, /^gap: 29 serials missing in this series$/);
});

test.run();
