/**
 * Integration tests of the `linkd` executable, CONTRACT.md section 3 (the factory provisioning
 * line): `provision` with and without a line key, the record a Python peer checks as the
 * line's tools would, bad serials and line keys, refusals (exit 73, nothing changed), two
 * provisions at once, `--record-out`, `repair`, and provisioning from a clean store. Run as
 * real subprocesses on emulated devices.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { RecordType } from "../src/records/types.ts";
import {
  assertDamaged,
  assertFails,
  assertSameBytes,
  copyDevice,
  type DeviceDir,
  exists,
  findWindow,
  FLASH_BYTES,
  flipAt,
  hex,
  latin1,
  linkd,
  listing,
  makeDevice,
  oneJsonLine,
  provisionArgs,
  provisionCmd,
  type ProvisionOptions,
  randomBytes,
  rootKeyOf,
  show,
  snapshot,
  status,
  useWork,
} from "./support/cli.ts";
import { keyFile, P, runBadCases } from "./support/cli_bad_cases.ts";
import { putUserTokens, sealedBody, withDevice } from "./support/cli_device.ts";
import { assertNoSecretInTranscript, secrets } from "./support/cli_secrets.ts";
import {
  checkProvision,
  provisionSigned,
  REPORT_KEYS,
  signed,
  SIGNED_SERIAL,
  signedRecord,
  signedReport,
} from "./support/cli_signed.ts";

const work = useWork("linkd-cli-provision-test-");

// ---- section 3: provisioning ---------------------------------------------------------------

test("provision with a raw 32-byte line key: signed record, verified by python3-nacl", async () => {
  await provisionSigned();
});

test("provision with a hex line key (64 hex characters and a newline)", async () => {
  const d = makeDevice(work);
  const seed = randomBytes(32);
  secrets.push({ name: "hex line seed", bytes: seed });
  const keyPath = `${d.dir}/line.hex`;
  Deno.writeTextFileSync(keyPath, `${hex(seed)}\n`, { mode: 0o600 });
  const o = {
    serial: "A",
    productId: "p",
    clientId: "c",
    lineKey: keyPath,
    recordOut: `${d.dir}/out.cbor`,
  };
  const t0 = Date.now();
  const r = await provisionCmd(d, o);
  const t1 = Date.now();
  const { check } = await checkProvision(r, o, t0, t1, { path: keyPath, fmt: "hex" });
  // The hex file is the seed, not 64 bytes of text taken as key material.
  const expected = nacl.sign.keyPair.fromSeed(seed).publicKey;
  assert.is(check.line_public_key, hex(expected));
  secrets.push({ name: "root key", bytes: rootKeyOf(d) });
});

test("provision without --line-key: unsigned; a 64-character serial is accepted", async () => {
  const d = makeDevice(work);
  const serial = "S".repeat(32) + "-0123456789._abcdefghijklmnopqrs";
  assert.is(serial.length, 64);
  const o = { serial, recordOut: `${d.dir}/unsigned.cbor` };
  const t0 = Date.now();
  const r = await provisionCmd(d, o);
  const t1 = Date.now();
  const { report } = await checkProvision(r, o, t0, t1);
  assert.not.ok("line_signature" in report);
  secrets.push({ name: "root key", bytes: rootKeyOf(d) });

  // Without --record-out nothing but the device files are written.
  const d2 = makeDevice(work);
  const r2 = await provisionCmd(d2, { serial: "NO-RECORD" });
  assert.equal(Object.keys(oneJsonLine(r2)).sort(), REPORT_KEYS);
  assert.equal(listing(d2.dir), ["flash.img", "linkd.json", "otp.bin"]);
  secrets.push({ name: "root key", bytes: rootKeyOf(d2) });
});

test("a provisioned device refuses provision with 73 and stays byte for byte the same", async () => {
  const d = copyDevice(signed(), work);
  const before = snapshot(d);
  assert.ok(before.flash !== null && before.otp !== null);
  const otherKey = `${d.dir}/other.hex`;
  const otherSeed = randomBytes(32);
  secrets.push({ name: "other line seed", bytes: otherSeed });
  Deno.writeTextFileSync(otherKey, hex(otherSeed) + "\n", { mode: 0o600 });
  const existingOut = `${d.dir}/existing.cbor`;
  Deno.writeTextFileSync(existingOut, "keep me");
  const files = listing(d.dir);

  const attempts: ProvisionOptions[] = [
    // the same call again
    { serial: SIGNED_SERIAL, lineKey: `${d.dir}/line.key`, recordOut: `${d.dir}/again.cbor` },
    // another identity, another line key (an existing --record-out is refused earlier, with
    // 64, before the device is opened: test/files_test.ts)
    {
      serial: "OTHER-9",
      productId: "Other",
      clientId: "amzn1.other",
      lineKey: otherKey,
      recordOut: `${d.dir}/other.cbor`,
    },
    // the bare minimum
    { serial: "OTHER-10" },
  ];
  for (const o of attempts) {
    const r = await provisionCmd(d, o);
    assertFails(r, 73, "already provisioned");
    const after = snapshot(d);
    assertSameBytes(after.flash, before.flash, `flash after ${show(r)}`);
    assertSameBytes(after.otp, before.otp, `OTP after ${show(r)}`);
    assert.equal(listing(d.dir), files, "no file created or removed");
    assert.is(Deno.readTextFileSync(existingOut), "keep me", "record-out not overwritten");
  }
  assert.not.ok(exists(`${d.dir}/again.cbor`));

  const s = oneJsonLine(await status(d));
  assert.is(s.serial, SIGNED_SERIAL);
  assert.is(s.device_public_key, signedReport.device_public_key);
});

test("bad serials and line keys: exit 65 (66 for a missing key file)", async () => {
  const seedHex = hex(randomBytes(32));
  await runBadCases([
    // CONTRACT.md section 1: "65 bad input data (a malformed serial ...)"; empty is malformed.
    {
      name: "--serial ''",
      code: 65,
      args: (d) => P(d, ""),
      mentions: () => "serial",
      provisioned: true,
    },
    {
      name: "--serial=",
      code: 65,
      args: (d) => [
        "provision",
        `--config=${d.config}`,
        "--serial=",
        "--product-id=P",
        "--client-id=C",
      ],
      mentions: () => "serial",
    },
    {
      name: "--product-id ''",
      code: 65,
      args: (d) => provisionArgs(d, { serial: "SN1", productId: "" }),
      mentions: () => "product id",
    },
    {
      name: "--client-id=",
      code: 65,
      args: (d) => [...P(d, "SN1").slice(0, 7), "--client-id="],
      mentions: () => "client id",
      provisioned: true,
    },
    {
      name: "65-character serial",
      code: 65,
      args: (d) => P(d, "S".repeat(65), "--record-out", `${d.dir}/r.cbor`),
      provisioned: true,
    },
    { name: "serial with a space", code: 65, args: (d) => P(d, "SN 1"), provisioned: true },
    { name: "serial with a control character", code: 65, args: (d) => P(d, "SN\u0001X") },
    { name: "serial with a tab", code: 65, args: (d) => P(d, "SN\t1") },
    { name: "serial with non-ASCII", code: 65, args: (d) => P(d, "SN\u00e9"), provisioned: true },
    { name: "serial with a slash", code: 65, args: (d) => P(d, "SN/1") },
    {
      name: "product id with a space",
      code: 65,
      args: (d) => provisionArgs(d, { serial: "SN1", productId: "Echo Mini" }),
      mentions: () => "product id",
    },
    {
      name: "client id with a newline",
      code: 65,
      args: (d) => provisionArgs(d, { serial: "SN1", clientId: "amzn1.x\ny" }),
      mentions: () => "client id",
      provisioned: true,
    },
    {
      name: "31-byte line key",
      code: 65,
      setup: keyFile("k", randomBytes(31)),
      args: (d) => P(d, "SN1", "--line-key", `${d.dir}/k`, "--record-out", `${d.dir}/r.cbor`),
      provisioned: true,
    },
    {
      name: "33-byte line key",
      code: 65,
      setup: keyFile("k", randomBytes(33)),
      args: (d) => P(d, "SN1", "--line-key", `${d.dir}/k`),
      provisioned: true,
    },
    {
      name: "63 hex characters",
      code: 65,
      setup: keyFile("k", seedHex.slice(1) + "\n"),
      args: (d) => P(d, "SN1", "--line-key", `${d.dir}/k`),
    },
    {
      name: "64 characters, one not hex",
      code: 65,
      setup: keyFile("k", "g" + seedHex.slice(1)),
      args: (d) => P(d, "SN1", "--line-key", `${d.dir}/k`),
    },
    {
      name: "empty line key file",
      code: 65,
      setup: keyFile("k", ""),
      args: (d) => P(d, "SN1", "--line-key", `${d.dir}/k`),
    },
    {
      name: "missing line key file",
      code: 66,
      args: (d) => P(d, "SN1", "--line-key", `${d.dir}/absent.key`, "--record-out", `${d.dir}/r`),
      mentions: (d) => `${d.dir}/absent.key`,
      provisioned: true,
    },
  ]);
});

// ---- concurrency and ordering ----------------------------------------------------------------

// Device.open takes the flash lock before it reads the image: a second provision waits, then
// sees the first one's identity and is refused.
test("two provisions at once: exactly one succeeds, the other gets 73", async () => {
  for (let trial = 0; trial < 4; trial++) {
    const d = makeDevice(work);
    const [a, b] = await Promise.all([
      provisionCmd(d, { serial: "RACE-A" }),
      provisionCmd(d, { serial: "RACE-B" }),
    ]);
    assert.equal([a.code, b.code].sort(), [0, 73], `${show(a)}\n${show(b)}`);
    const winner = a.code === 0 ? a : b;
    assert.is(oneJsonLine(await status(d)).serial, oneJsonLine(winner).serial);
  }
});

// --record-out is written before the identity is committed: when it cannot be written the
// device stays unprovisioned, so the line can retry and still get the signed record. A name
// that exists (here a folder) is refused with 64 before the device is touched; a write that
// fails late (a full disk) is in test/files_test.ts.
test("a record-out that cannot be written leaves the device unprovisioned", async () => {
  const d = makeDevice(work);
  Deno.mkdirSync(`${d.dir}/folder`);
  assertFails(await provisionCmd(d, { serial: "RO-1", recordOut: `${d.dir}/folder` }), 64);
  assert.is(oneJsonLine(await status(d)).provisioned, false);
  const retry = await provisionCmd(d, { serial: "RO-1", recordOut: `${d.dir}/rec.cbor` });
  assert.is(retry.code, 0, show(retry));
  assert.ok(exists(`${d.dir}/rec.cbor`));
  assert.is(oneJsonLine(await status(d)).serial, "RO-1");
});

// A device whose identity record was damaged after provisioning is not provisioned again:
// it keeps its OTP root key, and a second identity would contradict the line's records.
test("provision of a device with a damaged identity record is refused with 73, nothing changed", async () => {
  const d = copyDevice(signed(), work);
  const at = latin1(Deno.readFileSync(d.flash)).indexOf(latin1(signedRecord));
  assert.ok(at > 0, "the identity record is in the image");
  flipAt(d.flash, at + Math.floor(signedRecord.length / 2));
  const before = snapshot(d);
  const r = await provisionCmd(d, { serial: "OTHER-1" });
  assertFails(r, 73);
  assert.match(r.stderr, /damaged/);
  assert.equal(snapshot(d), before, "flash and OTP byte for byte as they were");
  assert.match(
    String((oneJsonLine(await status(d)).store as { detail: string }).detail),
    /damaged/,
  );
});

// A stuck device gets out: repair gives the same identity back, and nothing else.
test("repair: a damaged or lost identity comes back the same (serial, device key), re-signed; another is 73, nothing changed", async () => {
  const cases: [string, (d: DeviceDir) => void][] = [
    ["identity record damaged", (d) => {
      const at = latin1(Deno.readFileSync(d.flash)).indexOf(latin1(signedRecord));
      assert.ok(at > 0, "the identity record is in the image");
      flipAt(d.flash, at + Math.floor(signedRecord.length / 2));
    }],
    ["the only sector header damaged", (d) => flipAt(d.flash, 5)],
    ["flash erased", (d) => Deno.writeFileSync(d.flash, new Uint8Array(FLASH_BYTES).fill(0xff))],
    ["flash empty", (d) => Deno.writeFileSync(d.flash, new Uint8Array(0))],
    ["flash random", (d) => Deno.writeFileSync(d.flash, randomBytes(FLASH_BYTES))],
  ];
  const same = {
    serial: SIGNED_SERIAL,
    productId: signedReport.product_id as string,
    clientId: signedReport.client_id as string,
  };
  await Promise.all(cases.map(async ([name, damage]) => {
    const d = copyDevice(signed(), work);
    damage(d);
    const s = await assertDamaged(d);
    assert.is(s.provisioned, true, name);
    assert.is(s.serial, null, name);
    const before = snapshot(d);
    for (const o of [{ ...same, serial: "OTHER-8" }, { ...same, clientId: "amzn1.other" }]) {
      const r = await linkd(["repair", ...provisionArgs(d, o).slice(1)], work);
      assertFails(r, 73, "another serial, product id or client id");
      assert.equal(snapshot(d), before, `${name}: flash and OTP byte for byte as they were`);
    }
    // provision refuses a damaged device and names the way out.
    if (name !== "flash erased" && name !== "flash empty") {
      assertFails(await provisionCmd(d, same), 73, "linkd repair");
      assert.equal(snapshot(d), before, `${name}: provision changed nothing`);
    }
    const keyPath = `${d.dir}/line.key`;
    const r = await linkd(
      [
        "repair",
        ...provisionArgs(d, { ...same, lineKey: keyPath, recordOut: `${d.dir}/re.cbor` })
          .slice(1),
      ],
      work,
    );
    const report = oneJsonLine(r);
    assert.is(report.serial, SIGNED_SERIAL, name);
    assert.is(report.device_public_key, signedReport.device_public_key, `${name}: same key`);
    assert.match(report.line_signature as string, /^[0-9a-f]{128}$/, `${name}: signed again`);
    assert.ok(exists(`${d.dir}/re.cbor`), `${name}: --record-out written`);
    assertSameBytes(Deno.readFileSync(d.otp), before.otp, `${name}: OTP unchanged`);
    const after = oneJsonLine(await status(d));
    assert.equal(after.store, { ok: true }, name);
    assert.is(after.serial, SIGNED_SERIAL, name);
    assert.is(after.device_public_key, signedReport.device_public_key, name);
    // A whole device: nothing to repair, nothing written.
    const whole = snapshot(d);
    const again = await linkd(["repair", ...provisionArgs(d, same).slice(1)], work);
    assert.is(again.code, 0, show(again));
    assert.match(again.stderr, /nothing to repair/);
    assert.equal(snapshot(d), whole, `${name}: a second repair wrote nothing`);
  }));
  // A blank device has nothing to repair: 65, nothing created.
  const blank = makeDevice(work);
  assertFails(await linkd(["repair", ...provisionArgs(blank, same).slice(1)], work), 65, "blank");
  assert.not.ok(exists(blank.otp));
});

// ---- provisioning starts from a clean store ----------------------------------------------------

test("provision of a device whose OTP holds a key but whose identity is gone clears the old records", async () => {
  const d = copyDevice(signed(), work);
  const sealed = putUserTokens(d, signedReport.client_id as string);
  const oldKey = withDevice(d, (device) => {
    device.store.delete(RecordType.IDENTITY);
    return device.store.get(RecordType.DEVICE_KEY)!.data;
  });
  const otp = Deno.readFileSync(d.otp);
  const lost = oneJsonLine(await status(d));
  assert.is(
    lost.provisioned,
    true,
    "the OTP holds a root key: provisioned, whatever the flash says",
  );
  assert.equal(lost.store, {
    ok: false,
    detail:
      "the flash holds no identity record (provisioning was cut short, or the flash was erased or replaced): the device keeps its identity for life; repair it with linkd repair --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE], with the identity the line recorded for this device",
  });

  // Another serial is refused: the OTP binds the device to its identity for life.
  const before = snapshot(d);
  const other = await provisionCmd(d, { serial: "OTHER-3" });
  assertFails(other, 73, "another serial");
  assert.equal(snapshot(d), before, "flash and OTP byte for byte as they were");

  // The same identity again continues the provisioning: the old tokens are cleared.
  const r = await provisionCmd(d, {
    serial: SIGNED_SERIAL,
    productId: signedReport.product_id as string,
    clientId: signedReport.client_id as string,
  });
  assert.is(r.code, 0, show(r));
  assert.match(r.stderr, /^linkd: note: .*interrupted provisioning/);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.is(report.serial, SIGNED_SERIAL);
  assert.is(report.device_public_key, signedReport.device_public_key, "the same device key");
  assertSameBytes(Deno.readFileSync(d.otp), otp, "the OTP root key is kept");

  const s = oneJsonLine(await status(d));
  assert.is(s.provisioned, true);
  assert.is(s.linked, false, "the tokens of the earlier life are gone");
  assert.is(s.access_expires_at, null);
  assert.equal(s.store, { ok: true });
  const keys = withDevice(d, (device) => device.store.keys());
  assert.equal(keys, [RecordType.IDENTITY, RecordType.DEVICE_KEY]);
  const image = latin1(Deno.readFileSync(d.flash));
  assert.is(findWindow(image, sealedBody(sealed, SIGNED_SERIAL), 32), null, "tokens scrubbed");
  assert.is(findWindow(image, sealedBody(oldKey, SIGNED_SERIAL), 32), null, "old key scrubbed");
});

test("provision refuses a device whose store holds any damaged record: 73, nothing changed", async () => {
  const d = copyDevice(signed(), work);
  const sealed = putUserTokens(d, signedReport.client_id as string);
  // No identity (as after an interrupted provisioning) and a damaged token record.
  withDevice(d, (device) => device.store.delete(RecordType.IDENTITY));
  const body = sealedBody(sealed, SIGNED_SERIAL);
  const at = latin1(Deno.readFileSync(d.flash)).indexOf(body.slice(0, 64));
  assert.ok(at > 0, "the sealed tokens are in the image");
  flipAt(d.flash, at + 40);
  assert.equal(withDevice(d, (device) => device.store.health.lostKeys), [RecordType.TOKENS]);

  const before = snapshot(d);
  const r = await provisionCmd(d, { serial: "NEW-1" });
  assertFails(r, 73, "needs repair");
  assert.match(r.stderr, /damaged/);
  assert.match(r.stderr, /tokens/);
  assert.equal(snapshot(d), before, "flash and OTP byte for byte as they were");
});

// ---- every output of every command ---------------------------------------------------------

test("no secret appears in any output of any command", () => {
  assertNoSecretInTranscript({ commands: 60, rootKeys: 4, textSecrets: 0 });
});

test.run();
