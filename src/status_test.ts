import { test } from "uvu";
import * as assert from "uvu/assert";
import { formatStatus, type StatusReport } from "./status.ts";
import { MAX_TIME_MS } from "./tokens/token_record.ts";

const LINKED: StatusReport = {
  provisioned: true,
  serial: "SN1",
  product_id: "P",
  client_id: "C",
  device_public_key: "00".repeat(32),
  linked: true,
  scopes: ["alexa:all"],
  access_expires_at: 1_700_003_600_000,
  store: { ok: true },
};

test("formatStatus() shows the expiry as an ISO time", () => {
  const text = formatStatus(LINKED, 1_700_000_000_000);
  assert.match(text, /access token\s+expires 2023-11-14T23:13:20\.000Z \(in 60 min\)/);
  assert.match(formatStatus(LINKED, 1_800_000_000_000), /expired 2023-11-14T23:13:20\.000Z/);
});

test("formatStatus() never throws, whatever the expiry", () => {
  const values = [0, MAX_TIME_MS, 8.64e15, 8.64e15 + 1, Number.MAX_SAFE_INTEGER, -1, NaN];
  for (const at of values) {
    const text = formatStatus({ ...LINKED, access_expires_at: at }, Date.now());
    assert.match(text, /access token\s+(expires|expired) /, String(at));
  }
  assert.match(formatStatus({ ...LINKED, access_expires_at: MAX_TIME_MS }, 0), /9999-12-31T/);
  assert.match(
    formatStatus({ ...LINKED, access_expires_at: 8.64e15 + 1 }, 0),
    /8640000000000001 \(Unix ms\)/,
  );
});

test.run();
