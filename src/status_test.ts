import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseConfig } from "./config.ts";
import { Device } from "./device.ts";
import { refuse } from "./link/scope_book.ts";
import { EMPTY_BOOK, encodeScopeBook } from "./records/scope_book.ts";
import { provision } from "./provision/provision.ts";
import { formatStatus, type StatusReport, statusReport } from "./status.ts";
import { RecordType } from "./records/types.ts";
import { encodeTokenRecord, MAX_TIME_MS } from "./records/token.ts";

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
  capabilities: { granted: ["alexa:all"], denied: [] },
};

test("formatStatus() shows the expiry as an ISO time", () => {
  const text = formatStatus(LINKED, 1_700_000_000_000);
  assert.match(text, /access token\s+expires 2023-11-14T23:13:20\.000Z \(in 60 min\)/);
  assert.match(formatStatus(LINKED, 1_800_000_000_000), /expired 2023-11-14T23:13:20\.000Z/);
});

test("formatStatus() on a provisioned device whose identity is unreadable says so, never null", () => {
  const damaged: StatusReport = {
    ...LINKED,
    serial: null,
    product_id: null,
    client_id: null,
    device_public_key: null,
    linked: false,
    access_expires_at: null,
    store: { ok: false, detail: "the identity record is damaged" },
  };
  const text = formatStatus(damaged, 0);
  assert.not.match(text, /null/);
  assert.match(text, /serial\s+unreadable \(see store\)/);
  assert.match(text, /store\s+DAMAGED: the identity record is damaged/);
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

test("statusReport() tells which wanted scopes are not granted, and why", () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-status-" });
  try {
    const wanted = ["alexa:all", "music::library:read", "music::catalog"];
    const config = parseConfig(
      JSON.stringify({
        flash: { path: "flash.img" },
        keys: { otpPath: "otp.bin" },
        auth: { scopes: wanted },
      }),
      `${dir}/linkd.json`,
    );
    const d = Device.open(config);
    try {
      provision(
        d,
        { serial: "SN-S1", productId: "speaker", clientId: "cid" },
        () => 1_700_000_000_000,
      );
      const vault = d.vault();
      vault.put(
        RecordType.TOKENS,
        encodeTokenRecord({
          access_token: "Atza|a",
          refresh_token: "Atzr|r",
          token_type: "bearer",
          scopes: ["alexa:all"],
          expires_in: 3600,
          obtained_at: 1_700_000_000_000,
          expires_at: 1_700_003_600_000,
          client_id: "cid",
        }),
      );
      const refusal = {
        reason: "unknown_scope" as const,
        detail: "An unknown scope was requested",
        at: 1,
      };
      vault.put(
        RecordType.SCOPES,
        encodeScopeBook(refuse(EMPTY_BOOK, "music::library:read", refusal)),
      );
      const r = statusReport(d);
      assert.equal(r.scopes, ["alexa:all"]);
      assert.equal(r.capabilities, {
        granted: ["alexa:all"],
        denied: [
          { scope: "music::library:read", reason: "unknown_scope" },
          { scope: "music::catalog", reason: "not_granted" },
        ],
      });
      assert.match(
        formatStatus(r, 1_700_000_000_000),
        /not granted\s+music::library:read \(unknown_scope\) music::catalog/,
      );
    } finally {
      d.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test.run();
