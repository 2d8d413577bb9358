/**
 * Integration tests of the `linkd` executable (CONTRACT.md sections 1 to 3), run as real
 * subprocesses on emulated devices: a temp folder per device with a config file naming a flash
 * image and an OTP file next to it. Python peers (Debian's python3 with python3-cbor2 and
 * python3-nacl) check the factory record the way the factory line's tools would.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { loadConfig } from "../src/config.ts";
import { Device } from "../src/device.ts";
import { decodeCbor, encodeCbor } from "../src/cbor.ts";
import { Code, LinkdError } from "../src/errors.ts";
import { RecordType } from "../src/store/vault.ts";
import { encodeTokenRecord } from "../src/tokens/token_record.ts";
import { VERSION } from "../src/version.ts";
import {
  assertFails,
  assertNoTrace,
  assertOk,
  assertSameBytes,
  base64,
  copyDevice,
  type DeviceDir,
  exists,
  findWindow,
  fromHexString,
  hex,
  latin1,
  linkd,
  listing,
  makeDevice,
  oneJsonLine,
  python,
  type Run,
  show,
  snapshot,
  transcript,
} from "./support/cli.ts";

const work = Deno.makeTempDirSync({ prefix: "linkd-cli-test-" });
test.after(() => {
  Deno.removeSync(work, { recursive: true });
});

const FLASH_BYTES = 65536;
/** An OTP file of format 2: magic, root key, identity binding, check (src/seal/otp.ts). */
const OTP_BYTES = 76;
const utf8 = new TextEncoder();

/** Secrets that must never show up in any output of any command. */
const secrets: { name: string; bytes: Uint8Array }[] = [];
const textSecrets: { name: string; text: string }[] = [];

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A token-like string: `prefix` and `n` random base64url characters. */
function randomToken(prefix: string, n: number): string {
  const b = base64(randomBytes(Math.ceil(n * 3 / 4) + 3)).replace(/\+/g, "-").replace(
    /\//g,
    "_",
  ).replace(/=/g, "");
  return prefix + b.slice(0, n);
}

const status = (d: DeviceDir, json = true) =>
  linkd(["status", "--config", d.config, ...(json ? ["--json"] : [])], work);

interface ProvisionOptions {
  serial: string;
  productId?: string;
  clientId?: string;
  lineKey?: string;
  recordOut?: string;
}

function provisionArgs(d: DeviceDir, o: ProvisionOptions): string[] {
  return [
    "provision",
    "--config",
    d.config,
    "--serial",
    o.serial,
    "--product-id",
    o.productId ?? "Echo_Mini-1",
    "--client-id",
    o.clientId ?? "amzn1.application-oa2-client.5f3c0ffee0",
    ...(o.lineKey === undefined ? [] : ["--line-key", o.lineKey]),
    ...(o.recordOut === undefined ? [] : ["--record-out", o.recordOut]),
  ];
}

const provisionCmd = (d: DeviceDir, o: ProvisionOptions) => linkd(provisionArgs(d, o), work);

/** The contract's status object of a fresh device. */
const FRESH_STATUS = {
  provisioned: false,
  serial: null,
  product_id: null,
  client_id: null,
  device_public_key: null,
  linked: false,
  scopes: [],
  access_expires_at: null,
  store: { ok: true },
  // An extension to the contract's keys (consumers ignore keys they do not know).
  capabilities: { granted: [], denied: [] },
};

/** The root key an OTP file holds (bytes 4..36). */
function rootKeyOf(d: DeviceDir): Uint8Array {
  const otp = Deno.readFileSync(d.otp);
  assert.is(otp.length, OTP_BYTES, "OTP file size");
  return otp.slice(4, 36);
}

// ---- Python peer: reads a --record-out file as the factory line's tools would -------------

const CHECK_RECORD_PY = `
import sys, io, json, hashlib, cbor2, nacl.signing, nacl.exceptions
env_path, seed_path, fmt = sys.argv[1:4]
raw = open(env_path, "rb").read()
fp = io.BytesIO(raw)
env = cbor2.CBORDecoder(fp).decode()
out = {"trailing": len(raw) - fp.tell(), "env_type": type(env).__name__}
out["env_keys"] = sorted(env.keys())
out["env_key_types"] = sorted({type(k).__name__ for k in env})
out["env_value_types"] = {k: type(v).__name__ for k, v in env.items()}
rb = env["record"]
fp = io.BytesIO(rb)
rec = cbor2.CBORDecoder(fp).decode()
out["record_trailing"] = len(rb) - fp.tell()
out["record_type"] = type(rec).__name__
out["record_keys"] = sorted(rec.keys())
out["record_key_types"] = sorted({type(k).__name__ for k in rec})
out["record_value_types"] = {k: type(v).__name__ for k, v in rec.items()}
out["serial"] = rec["serial"]
out["product_id"] = rec["product_id"]
out["client_id"] = rec["client_id"]
out["device_public_key"] = rec["device_public_key"].hex()
out["provisioned_at"] = rec["provisioned_at"]
out["sha512"] = hashlib.sha512(rb).hexdigest()
out["record_hex"] = rb.hex()
def verifies(key, msg, sig):
    try:
        nacl.signing.VerifyKey(key).verify(msg, sig)
        return True
    except nacl.exceptions.BadSignatureError:
        return False
if "signature" in env:
    sig, lpk = env["signature"], env["line_public_key"]
    out["signature"] = sig.hex()
    out["line_public_key"] = lpk.hex()
    out["verified"] = verifies(lpk, rb, sig)
    seed = open(seed_path, "rb").read()
    if fmt == "hex":
        seed = bytes.fromhex(seed.decode("ascii").strip())
    out["derived_line_public_key"] = bytes(nacl.signing.SigningKey(seed).verify_key).hex()
    tampered = []
    for i in sorted({0, len(rb) // 3, len(rb) // 2, len(rb) - 1}):
        t = bytearray(rb)
        t[i] ^= 0x01
        tampered.append(verifies(lpk, bytes(t), sig))
    out["tampered_verified"] = tampered
    bad_sig = bytearray(sig)
    bad_sig[10] ^= 0x80
    out["bad_signature_verified"] = verifies(lpk, rb, bytes(bad_sig))
print(json.dumps(out))
`;

interface RecordCheck {
  trailing: number;
  env_type: string;
  env_keys: string[];
  env_key_types: string[];
  env_value_types: Record<string, string>;
  record_trailing: number;
  record_type: string;
  record_keys: string[];
  record_key_types: string[];
  record_value_types: Record<string, string>;
  serial: string;
  product_id: string;
  client_id: string;
  device_public_key: string;
  provisioned_at: number;
  sha512: string;
  record_hex: string;
  signature?: string;
  line_public_key?: string;
  verified?: boolean;
  derived_line_public_key?: string;
  tampered_verified?: boolean[];
  bad_signature_verified?: boolean;
}

function checkRecord(recordOut: string, seedPath = "", fmt = "raw"): Promise<RecordCheck> {
  return python(CHECK_RECORD_PY, [recordOut, seedPath, fmt]) as Promise<RecordCheck>;
}

const REPORT_KEYS = ["client_id", "device_public_key", "product_id", "record_sha512", "serial"];
const RECORD_KEYS = ["client_id", "device_public_key", "product_id", "provisioned_at", "serial"];

/** Checks a provision report and its record-out file against each other and CONTRACT.md 3. */
async function checkProvision(
  r: Run,
  o: ProvisionOptions,
  t0: number,
  t1: number,
  seed?: { path: string; fmt: "raw" | "hex" },
): Promise<{ report: Record<string, unknown>; check: RecordCheck }> {
  const report = oneJsonLine(r);
  const signed = seed !== undefined;
  assert.equal(
    Object.keys(report).sort(),
    signed ? [...REPORT_KEYS, "line_signature"].sort() : REPORT_KEYS,
    show(r),
  );
  assert.is(report.serial, o.serial);
  assert.is(report.product_id, o.productId ?? "Echo_Mini-1");
  assert.is(report.client_id, o.clientId ?? "amzn1.application-oa2-client.5f3c0ffee0");
  assert.match(report.device_public_key as string, /^[0-9a-fA-F]{64}$/);
  assert.match(report.record_sha512 as string, /^[0-9a-fA-F]{128}$/);
  if (signed) assert.match(report.line_signature as string, /^[0-9a-fA-F]{128}$/);

  assert.ok(o.recordOut !== undefined && exists(o.recordOut), "the record-out file exists");
  const c = await checkRecord(o.recordOut!, seed?.path ?? "", seed?.fmt ?? "raw");
  assert.is(c.trailing, 0, "record-out holds exactly one CBOR item");
  assert.is(c.env_type, "dict");
  assert.equal(c.env_keys, signed ? ["line_public_key", "record", "signature"] : ["record"]);
  assert.equal(c.env_key_types, ["str"]);
  for (const [k, t] of Object.entries(c.env_value_types)) assert.is(t, "bytes", `type of ${k}`);
  assert.is(c.record_trailing, 0, "record holds exactly one CBOR item");
  assert.is(c.record_type, "dict");
  assert.equal(c.record_keys, RECORD_KEYS);
  assert.equal(c.record_key_types, ["str"]);
  assert.equal(c.record_value_types, {
    serial: "str",
    product_id: "str",
    client_id: "str",
    device_public_key: "bytes",
    provisioned_at: "int",
  });
  assert.is(c.serial, o.serial);
  assert.is(c.product_id, report.product_id);
  assert.is(c.client_id, report.client_id);
  assert.is(c.device_public_key.length, 64, "device_public_key is 32 bytes");
  assert.is(c.device_public_key, (report.device_public_key as string).toLowerCase());
  assert.ok(
    c.provisioned_at >= t0 - 2000 && c.provisioned_at <= t1 + 2000,
    `provisioned_at ${c.provisioned_at} is not between ${t0} and ${t1} (Unix ms)`,
  );
  assert.is(c.sha512, (report.record_sha512 as string).toLowerCase(), "record_sha512");
  if (signed) {
    assert.is(c.verified, true, "python3-nacl verifies the line signature");
    assert.is(c.line_public_key, c.derived_line_public_key, "line public key derives from seed");
    assert.is(c.signature, (report.line_signature as string).toLowerCase(), "line_signature");
    assert.equal(c.tampered_verified, [false, false, false, false], "tampered records fail");
    assert.is(c.bad_signature_verified, false, "a changed signature fails");
  } else {
    assert.is(c.signature, undefined);
    assert.is(c.line_public_key, undefined);
  }
  return { report, check: c };
}

// Shared devices: provisioned once, copied by the tests that need one.
let signedDevice: DeviceDir | null = null;
let signedReport: Record<string, unknown> = {};
let signedRecord: Uint8Array = new Uint8Array(0);
const SIGNED_SERIAL = "SN-2024.0001_a";

function signed(): DeviceDir {
  assert.ok(signedDevice !== null, "the provisioned device of an earlier test is missing");
  return signedDevice!;
}

// ---- section 1: --version, --help ------------------------------------------------------------

test("--version prints `linkd <semver>`, --help names every subcommand", async () => {
  const [v, h] = await Promise.all([linkd(["--version"], work), linkd(["--help"], work)]);
  const out = assertOk(v);
  assert.match(
    out,
    /^linkd (0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\n$/,
  );
  assert.is(out, `linkd ${VERSION}\n`);

  const help = assertOk(h);
  for (const sub of ["run", "status", "provision", "logout", "factory-reset"]) {
    assert.match(help, new RegExp(`linkd ${sub} --config`), `--help shows linkd ${sub}`);
  }
  assert.match(help, /linkd --version/);
  for (const flag of ["--serial", "--product-id", "--client-id", "--line-key", "--record-out"]) {
    assert.ok(help.includes(flag), `--help mentions ${flag}`);
  }
});

// ---- section 1 and 2: a fresh device ---------------------------------------------------------

test("status --json of a fresh device: the contract's object; status creates no file", async () => {
  const d = makeDevice(work);
  const r = await status(d);
  const s = oneJsonLine(r);
  assert.equal(s, FRESH_STATUS);
  assert.equal(Object.keys(s).sort(), Object.keys(FRESH_STATUS).sort());
  // status never creates or writes a file: a missing flash reads as an erased part.
  assert.equal(listing(d.dir), ["linkd.json"], "status creates neither the flash nor the OTP");

  // An empty flash file is not filled either; a blank device still.
  Deno.writeFileSync(d.flash, new Uint8Array(0));
  assert.equal(oneJsonLine(await status(d)), FRESH_STATUS);
  assert.is(Deno.statSync(d.flash).size, 0, "status leaves an empty flash file empty");
});

// ---- section 3: provisioning ---------------------------------------------------------------

test("provision with a raw 32-byte line key: signed record, verified by python3-nacl", async () => {
  const d = makeDevice(work);
  const seed = randomBytes(32);
  secrets.push({ name: "raw line seed", bytes: seed });
  const keyPath = `${d.dir}/line.key`;
  Deno.writeFileSync(keyPath, seed, { mode: 0o600 }); // a line key only its owner may read
  const o = { serial: SIGNED_SERIAL, lineKey: keyPath, recordOut: `${d.dir}/record.cbor` };
  const t0 = Date.now();
  const r = await provisionCmd(d, o);
  const t1 = Date.now();
  const { report, check } = await checkProvision(r, o, t0, t1, { path: keyPath, fmt: "raw" });

  const otp = Deno.readFileSync(d.otp);
  assert.is(otp.length, OTP_BYTES, "provisioning creates the OTP file");
  assert.is(new TextDecoder().decode(otp.subarray(0, 4)), "LKO2", "format 2: with a binding");
  secrets.push({ name: "root key", bytes: otp.slice(4, 36) });
  assert.is(Deno.readFileSync(d.flash).length, FLASH_BYTES);
  assert.equal(Deno.readFileSync(keyPath), seed, "the line key file is left as it was");
  assert.equal(listing(d.dir), ["flash.img", "line.key", "linkd.json", "otp.bin", "record.cbor"]);

  signedDevice = d;
  signedReport = report;
  signedRecord = fromHexString(check.record_hex);
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

// ---- section 1: bad input ------------------------------------------------------------------

interface BadCase {
  readonly name: string;
  readonly code: number;
  /** The command line; `d` is a device folder holding only its config. */
  readonly args: (d: DeviceDir) => string[];
  /** Something the stderr line must say. */
  readonly mentions?: (d: DeviceDir) => string;
  /** Prepares the device folder. */
  readonly setup?: (d: DeviceDir) => void;
  /** Also run it on a copy of a provisioned device (same exit code, nothing changed). */
  readonly provisioned?: boolean;
}

const P = (d: DeviceDir, serial: string, ...more: string[]) => [
  ...provisionArgs(d, { serial }),
  ...more,
];

function keyFile(name: string, bytes: Uint8Array | string) {
  return (d: DeviceDir) => {
    // Mode 0600: a key group or others may read is refused before its content is looked at.
    if (typeof bytes === "string") {
      Deno.writeTextFileSync(`${d.dir}/${name}`, bytes, { mode: 0o600 });
    } else Deno.writeFileSync(`${d.dir}/${name}`, bytes, { mode: 0o600 });
  };
}

async function runBadCases(cases: readonly BadCase[]): Promise<void> {
  await Promise.all(cases.map(async (c) => {
    const d = makeDevice(work);
    c.setup?.(d);
    const files = listing(d.dir);
    const r = await linkd(c.args(d), work);
    const line = assertFails(r, c.code, c.mentions?.(d));
    assert.ok(line.startsWith("linkd: "), `${c.name}: ${line}`);
    assert.not.ok(exists(d.otp), `${c.name}: the OTP file must not be created`);
    // Every input is checked before the device is opened: a refused call creates nothing.
    assert.equal(listing(d.dir), files, `${c.name}: nothing created`);
    if (!c.provisioned) return;
    const p = copyDevice(signed(), work);
    c.setup?.(p);
    const before = snapshot(p);
    const pfiles = listing(p.dir);
    const rp = await linkd(c.args(p), work);
    assertFails(rp, c.code, c.mentions?.(p));
    const after = snapshot(p);
    assertSameBytes(after.flash, before.flash, `${c.name}: flash of a provisioned device`);
    assertSameBytes(after.otp, before.otp, `${c.name}: OTP of a provisioned device`);
    assert.equal(listing(p.dir), pfiles, `${c.name}: files of a provisioned device`);
  }));
}

test("bad command lines: exit 64, one line, nothing touched", async () => {
  await runBadCases([
    // An empty --serial, --product-id or --client-id is bad data (65, below); an empty value
    // of any other flag is a bad command line.
    {
      name: "--line-key ''",
      code: 64,
      args: (d) => P(d, "SN1", "--line-key", ""),
      mentions: () => "--line-key",
    },
    {
      name: "--config=",
      code: 64,
      args: () => ["status", "--config=", "--json"],
      mentions: () => "--config",
    },
    {
      name: "unknown flag (status)",
      code: 64,
      args: (d) => ["status", "--config", d.config, "--jsno"],
      mentions: () => "--jsno",
    },
    {
      name: "unknown flag (provision)",
      code: 64,
      args: (d) => P(d, "SN1", "--line-kye", `${d.dir}/k`),
      mentions: () => "--line-kye",
    },
    {
      name: "unknown subcommand",
      code: 64,
      args: (d) => ["provison", "--config", d.config],
      mentions: () => "provison",
    },
    {
      name: "missing --serial",
      code: 64,
      args: (d) => ["provision", "--config", d.config, "--product-id", "P", "--client-id", "C"],
      mentions: () => "--serial",
    },
    {
      name: "flag given twice",
      code: 64,
      args: (d) => P(d, "SN1", "--serial", "SN2"),
      mentions: () => "--serial",
    },
    {
      name: "stray argument",
      code: 64,
      args: (d) => ["status", "--config", d.config, "extra"],
      mentions: () => "extra",
    },
    { name: "--version with more", code: 64, args: () => ["--version", "--json"] },
  ]);
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

test("missing folders: exit 66, nothing created", async () => {
  const cfg = (flash: string, otp: string) =>
    JSON.stringify({ flash: { path: flash }, keys: { otpPath: otp } });
  await runBadCases([
    {
      name: "OTP folder missing (provision)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("flash.img", "nokeys/otp.bin")),
      args: (d) => P(d, "SN1"),
      mentions: () => "nokeys",
    },
    {
      name: "OTP folder missing (status)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("flash.img", "nokeys/otp.bin")),
      args: (d) => ["status", "--config", d.config, "--json"],
      mentions: () => "nokeys",
    },
    {
      name: "flash folder missing (provision)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("noflash/flash.img", "otp.bin")),
      args: (d) => P(d, "SN1"),
      mentions: () => "noflash",
    },
    {
      name: "flash folder missing (status)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("noflash/flash.img", "otp.bin")),
      args: (d) => ["status", "--config", d.config],
      mentions: () => "noflash",
    },
    {
      name: "record-out folder missing",
      code: 66,
      args: (d) => P(d, "SN1", "--record-out", `${d.dir}/nowhere/r.cbor`),
      mentions: () => "nowhere",
    },
  ]);
});

test("bad config: exit 78 naming the problem, nothing created", async () => {
  await runBadCases([
    {
      name: "unknown key in a section",
      code: 78,
      setup: (d) =>
        Deno.writeTextFileSync(
          d.config,
          JSON.stringify({
            flash: { path: "flash.img", sise: 4096 },
            keys: { otpPath: "otp.bin" },
          }),
        ),
      args: (d) => P(d, "SN1"),
      mentions: () => "flash.sise",
    },
    {
      name: "unknown top-level key",
      code: 78,
      setup: (d) =>
        Deno.writeTextFileSync(
          d.config,
          JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" }, colour: 1 }),
        ),
      args: (d) => ["status", "--config", d.config, "--json"],
      mentions: () => "colour",
    },
    {
      name: "wrong type",
      code: 78,
      setup: (d) =>
        Deno.writeTextFileSync(
          d.config,
          JSON.stringify({
            flash: { path: "flash.img", size: "64k" },
            keys: { otpPath: "otp.bin" },
          }),
        ),
      args: (d) => ["status", "--config", d.config],
      mentions: () => "flash.size",
    },
    {
      name: "not JSON",
      code: 78,
      setup: (d) => Deno.writeTextFileSync(d.config, "{flash: {path: flash.img}"),
      args: (d) => P(d, "SN1"),
      mentions: (d) => d.config,
    },
    {
      name: "--config to a missing file",
      code: 78,
      args: (d) => ["status", "--config", `${d.dir}/absent.json`, "--json"],
      mentions: (d) => `${d.dir}/absent.json`,
    },
    {
      name: "--config to a missing file (provision)",
      code: 78,
      args: (d) => [...P(d, "SN1").slice(0, 2), `${d.dir}/absent.json`, ...P(d, "SN1").slice(3)],
      mentions: (d) => `${d.dir}/absent.json`,
    },
  ]);
});

// ---- section 1: where the config comes from -------------------------------------------------

test("--config falls back to LINKD_CONFIG; --config wins over it", async () => {
  const d = copyDevice(signed(), work);
  const fresh = makeDevice(work);

  const viaEnv = oneJsonLine(await linkd(["status", "--json"], work, { LINKD_CONFIG: d.config }));
  assert.is(viaEnv.provisioned, true);
  assert.is(viaEnv.serial, SIGNED_SERIAL);

  const both = oneJsonLine(
    await linkd(["status", "--json", "--config", fresh.config], work, { LINKD_CONFIG: d.config }),
  );
  assert.equal(both, FRESH_STATUS, "--config is used, not LINKD_CONFIG");

  const missing = `${work}/no-such-config.json`;
  assertFails(await linkd(["status"], work, { LINKD_CONFIG: missing }), 78, missing);

  // provision through LINKD_CONFIG writes the device that config names.
  const p = makeDevice(work);
  const r = await linkd(
    ["provision", "--serial", "ENV-1", "--product-id", "P", "--client-id", "C"],
    work,
    { LINKD_CONFIG: p.config },
  );
  assert.is(oneJsonLine(r).serial, "ENV-1");
  assert.ok(exists(p.otp) && exists(p.flash), "the env config's device was provisioned");
  secrets.push({ name: "root key", bytes: rootKeyOf(p) });

  // A relative --config is relative to the working folder; paths inside it to its own folder.
  const rel = p.dir.slice(work.length + 1) + "/linkd.json";
  const s = oneJsonLine(await linkd(["status", "--json", "--config", rel], work));
  assert.is(s.serial, "ENV-1");

  // Neither: /etc/linkd/linkd.json.
  if (!exists("/etc/linkd/linkd.json")) {
    assertFails(await linkd(["status"], work), 78, "/etc/linkd/linkd.json");
  }
});

// ---- section 1: status of a provisioned device -----------------------------------------------

test("status after provision: the provisioned identity, no other long hex", async () => {
  const d = copyDevice(signed(), work);
  const [j, h] = await Promise.all([status(d), status(d, false)]);
  const s = oneJsonLine(j);
  assert.equal(s, {
    provisioned: true,
    serial: SIGNED_SERIAL,
    product_id: signedReport.product_id,
    client_id: signedReport.client_id,
    device_public_key: signedReport.device_public_key,
    linked: false,
    scopes: [],
    access_expires_at: null,
    store: { ok: true },
    capabilities: { granted: [], denied: [] },
  });

  const human = assertOk(h);
  assert.ok(human.includes(SIGNED_SERIAL), human);
  assert.ok(human.includes(signedReport.product_id as string), human);
  assert.ok(human.includes(signedReport.client_id as string), human);
  const longHex = [...human.matchAll(/[0-9a-fA-F]{16,}/g)].map((m) => m[0].toLowerCase());
  assert.ok(longHex.length >= 1, "the device public key is shown");
  for (const x of longHex) assert.is(x, signedReport.device_public_key, `long hex ${x}`);
  const withoutKey = human.toLowerCase().replaceAll(signedReport.device_public_key as string, "");
  assert.not.match(withoutKey, /[a-z0-9+/]{40,}/, "no long base64 either");
});

// ---- sections 1 and 2: secrets, tokens, logout, factory-reset ---------------------------------

/** Every way a secret could leak into a text (hex, base64, raw) that `text` must not hold. */
function leakIn(text: string): string | null {
  const lower = text.toLowerCase();
  for (const s of secrets) {
    const w = findWindow(lower, hex(s.bytes), 32) ??
      findWindow(text, base64(s.bytes).slice(0, -4), 16) ??
      findWindow(text, latin1(s.bytes), 12);
    if (w !== null) return s.name;
  }
  for (const s of textSecrets) {
    const w = findWindow(text, s.text, 16) ??
      findWindow(lower, hex(utf8.encode(s.text)), 32) ??
      findWindow(text, base64(utf8.encode(s.text)), 24);
    if (w !== null) return s.name;
  }
  return null;
}

function assertNoSecretIn(text: string, where: string): void {
  const name = leakIn(text);
  assert.is(name, null, `${name} appears in ${where}`);
}

/** Asserts the flash image holds no trace of the known secrets. */
function assertNoSecretInFlash(d: DeviceDir): string {
  const image = latin1(Deno.readFileSync(d.flash));
  for (const s of secrets) {
    assert.is(findWindow(image, latin1(s.bytes), 16), null, `${s.name} in the flash image`);
    assert.is(findWindow(image.toLowerCase(), hex(s.bytes), 32), null, `${s.name} (hex) in flash`);
    assert.is(
      findWindow(image, base64(s.bytes).slice(0, -4), 16),
      null,
      `${s.name} (base64) in flash`,
    );
  }
  for (const s of textSecrets) {
    assert.is(findWindow(image, s.text, 16), null, `${s.name} in the flash image`);
    assert.is(
      findWindow(image.toLowerCase(), hex(utf8.encode(s.text)), 32),
      null,
      `${s.name} (hex) in flash`,
    );
    assert.is(
      findWindow(image, base64(utf8.encode(s.text)), 24),
      null,
      `${s.name} (base64) in flash`,
    );
  }
  return image;
}

/** Opens the device in this process, runs `fn`, closes it. */
function withDevice<T>(d: DeviceDir, fn: (device: Device) => T): T {
  const device = Device.open(loadConfig(d.config));
  try {
    return fn(device);
  } finally {
    device.close();
  }
}

function deviceSeed(device: Device): Uint8Array {
  const plain = device.vault().get(RecordType.DEVICE_KEY);
  assert.ok(plain !== null, "the device key record opens");
  const m = decodeCbor(plain!) as { ed25519_seed?: unknown };
  assert.instance(m.ed25519_seed, Uint8Array);
  return m.ed25519_seed as Uint8Array;
}

function putTokens(d: DeviceDir, t: {
  access: string;
  refresh: string;
  scopes: string[];
  expiresAt: number;
  clientId: string;
}): Uint8Array {
  return withDevice(d, (device) => {
    device.vault().put(
      RecordType.TOKENS,
      encodeTokenRecord({
        access_token: t.access,
        refresh_token: t.refresh,
        token_type: "bearer",
        scopes: t.scopes,
        expires_in: 3600,
        obtained_at: t.expiresAt - 3600_000,
        expires_at: t.expiresAt,
        client_id: t.clientId,
      }),
    );
    const rec = device.store.get(RecordType.TOKENS);
    assert.ok(rec !== null);
    return rec!.data;
  });
}

/** The sealed record minus its clear header (magic, type, seq, serial): nonce and ciphertext. */
function sealedBody(sealed: Uint8Array, serial: string): string {
  return latin1(sealed.subarray(16 + serial.length));
}

test("secrets stay sealed: tokens, device key, root key; logout and factory-reset forget", async () => {
  const d = copyDevice(signed(), work);
  const rootKey = rootKeyOf(d);
  const otpBefore = Deno.readFileSync(d.otp);

  // The device's Ed25519 seed: it opens in-process, matches the printed key, and is sealed.
  const seed = withDevice(d, (device) => {
    assert.is(device.vault().identity()?.identity.serial, SIGNED_SERIAL);
    return deviceSeed(device).slice();
  });
  assert.is(hex(nacl.sign.keyPair.fromSeed(seed).publicKey), signedReport.device_public_key);
  secrets.push({ name: "device Ed25519 seed", bytes: seed });
  assert.ok(secrets.some((s) => s.name === "root key" && hex(s.bytes) === hex(rootKey)));

  // Sanity: the search finds what is in the clear.
  let image = assertNoSecretInFlash(d);
  assert.ok(image.includes(SIGNED_SERIAL), "the serial is in the clear");
  assert.ok(image.includes(latin1(signedRecord)), "the identity record is in the clear");

  const access = randomToken("Atza|", 300);
  const refresh = randomToken("Atzr|", 300);
  textSecrets.push({ name: "access token", text: access }, {
    name: "refresh token",
    text: refresh,
  });
  const scopes = ["alexa:all", "profile:user_id"];
  const expiresAt = Date.now() + 3600_000;
  const sealed = putTokens(d, {
    access,
    refresh,
    scopes,
    expiresAt,
    clientId: signedReport.client_id as string,
  });
  const body = sealedBody(sealed, SIGNED_SERIAL);
  image = assertNoSecretInFlash(d);
  const mid = body.slice(Math.floor(body.length / 2) - 16, Math.floor(body.length / 2) + 16);
  assert.ok(image.includes(mid), "sanity: the sealed token record is in the flash image");

  const [j, h] = await Promise.all([status(d), status(d, false)]);
  const s = oneJsonLine(j);
  assert.equal(s, {
    provisioned: true,
    serial: SIGNED_SERIAL,
    product_id: signedReport.product_id,
    client_id: signedReport.client_id,
    device_public_key: signedReport.device_public_key,
    linked: true,
    scopes,
    access_expires_at: expiresAt,
    store: { ok: true },
    capabilities: { granted: scopes, denied: [] },
  });
  const human = assertOk(h);
  assert.match(human, /linked\s+yes/);
  assert.ok(human.includes("profile:user_id"), human);
  for (const r of [j, h]) assertNoSecretIn(r.stdout + r.stderr, show(r));

  // logout: the tokens are gone from the flash, not just marked deleted; the identity stays.
  const out = assertOk(await linkd(["logout", "--config", d.config], work));
  assert.ok(out.trim().length > 0);
  image = assertNoSecretInFlash(d);
  assert.is(findWindow(image, body, 32), null, "no 32-byte window of the sealed tokens remains");
  assert.ok(image.includes(latin1(signedRecord)), "the identity record remains");
  const afterLogout = oneJsonLine(await status(d));
  assert.equal(afterLogout, {
    ...s,
    linked: false,
    scopes: [],
    access_expires_at: null,
    capabilities: { granted: [], denied: [] },
  });
  assertSameBytes(Deno.readFileSync(d.otp), otpBefore, "OTP after logout");
  withDevice(d, (device) => {
    assert.is(device.store.get(RecordType.TOKENS), null);
    assert.is(hex(deviceSeed(device)), hex(seed), "the device key survives logout");
  });

  // factory-reset: same again, from a linked device.
  const sealed2 = putTokens(d, {
    access,
    refresh,
    scopes: ["alexa:all"],
    expiresAt,
    clientId: signedReport.client_id as string,
  });
  const body2 = sealedBody(sealed2, SIGNED_SERIAL);
  assert.is(oneJsonLine(await status(d)).linked, true);
  assertOk(await linkd(["factory-reset", "--config", d.config], work));
  image = assertNoSecretInFlash(d);
  assert.is(findWindow(image, body2, 32), null, "no trace of the sealed tokens after reset");
  assert.is(findWindow(image, body, 32), null);
  const afterReset = oneJsonLine(await status(d));
  assert.equal(afterReset, afterLogout, "factory-reset keeps the identity");
  assertSameBytes(Deno.readFileSync(d.otp), otpBefore, "OTP after factory-reset");
  withDevice(d, (device) => {
    assert.is(hex(deviceSeed(device)), hex(seed), "the device key survives factory-reset");
  });

  // Both again on an unlinked and on a fresh device: no error.
  assertOk(await linkd(["logout", "--config", d.config], work));
  const fresh = makeDevice(work);
  assertOk(await linkd(["logout", "--config", fresh.config], work));
  assertOk(await linkd(["factory-reset", "--config", fresh.config], work));
  assert.equal(oneJsonLine(await status(fresh)), FRESH_STATUS);
});

test("linked stays true while a refresh token is held, even after the access token expired", async () => {
  const d = copyDevice(signed(), work);
  const expiredAt = Date.now() - 60_000;
  const access = randomToken("Atza|", 120);
  const refresh = randomToken("Atzr|", 120);
  textSecrets.push({ name: "expired access token", text: access });
  textSecrets.push({ name: "held refresh token", text: refresh });
  putTokens(d, {
    access,
    refresh,
    scopes: ["alexa:all"],
    expiresAt: expiredAt,
    clientId: signedReport.client_id as string,
  });
  const [j, h] = await Promise.all([status(d), status(d, false)]);
  const s = oneJsonLine(j);
  assert.is(s.linked, true);
  assert.equal(s.scopes, ["alexa:all"]);
  assert.is(s.access_expires_at, expiredAt);
  assert.match(assertOk(h), /expired/);
  assertNoSecretInFlash(d);
});

test("status --json: access_expires_at is an integer; a token record with a float time is damage, never printed", async () => {
  const d = copyDevice(signed(), work);
  const clientId = signedReport.client_id as string;
  // A Unix-millisecond time beyond 2^32, as every real one is: a JSON integer literal.
  const expiresAt = 1_764_000_000_123;
  putTokens(d, {
    access: randomToken("Atza|", 80),
    refresh: randomToken("Atzr|", 80),
    scopes: ["alexa:all"],
    expiresAt,
    clientId,
  });
  const j = await status(d);
  assert.match(j.stdout, /"access_expires_at":1764000000123[,}]/);
  const s = oneJsonLine(j);
  assert.is(s.access_expires_at, expiresAt);
  assert.ok(Number.isSafeInteger(s.access_expires_at), "an integer");

  // Written by something that was not linkd's token record code: a fractional expires_at.
  const access = randomToken("Atza|", 80);
  withDevice(d, (device) =>
    device.vault().put(
      RecordType.TOKENS,
      encodeCbor({
        access_token: access,
        refresh_token: randomToken("Atzr|", 80),
        token_type: "bearer",
        scopes: ["alexa:all"],
        expires_in: 3600,
        obtained_at: 1_763_999_996_523,
        expires_at: 1_764_000_000_123.4567,
        client_id: clientId,
      }),
    ));
  const [bad, human] = await Promise.all([status(d), status(d, false)]);
  assert.not.match(bad.stdout, /1764000000123\.4/, "the float is never printed");
  const b = oneJsonLine(bad);
  assert.is(b.access_expires_at, null);
  assert.is(b.linked, false);
  assert.is((b.store as { ok: boolean }).ok, false);
  assert.match(String((b.store as { detail?: string }).detail), /expires_at/);
  assertOk(human);
  for (const r of [bad, human]) {
    assertNoSecretIn(r.stdout + r.stderr, show(r));
    assert.not.ok((r.stdout + r.stderr).includes(access.slice(5, 40)), show(r));
  }
});

// ---- section 1: damage is reported, never a crash ---------------------------------------------

function flipAt(path: string, offset: number, mask = 0x01): void {
  const b = Deno.readFileSync(path);
  b[offset] = b[offset]! ^ mask;
  Deno.writeFileSync(path, b);
}

/** status of a damaged device: exit 0 and store.ok false with a detail. */
async function assertDamaged(d: DeviceDir): Promise<Record<string, unknown>> {
  const [j, h] = await Promise.all([status(d), status(d, false)]);
  const s = oneJsonLine(j);
  const store = s.store as { ok: unknown; detail?: unknown };
  assert.is(store.ok, false, show(j));
  assert.type(store.detail, "string");
  assert.ok((store.detail as string).length > 0);
  assert.not.match(store.detail as string, /\n/);
  assert.match(assertOk(h), /DAMAGED/);
  return s;
}

test("damaged identity record: status reports store.ok false, no crash", async () => {
  const d = copyDevice(signed(), work);
  const flash = Deno.readFileSync(d.flash);
  const image = latin1(flash);
  const at = image.indexOf(latin1(signedRecord));
  assert.ok(at > 0, "the identity record is in the image");
  assert.is(image.indexOf(latin1(signedRecord), at + 1), -1, "once");
  flipAt(d.flash, at + Math.floor(signedRecord.length / 2));
  const s = await assertDamaged(d);
  assert.is(s.provisioned, true, "provisioned: the OTP holds a root key, whatever the flash says");
  assert.is(s.serial, null, "a damaged identity is not shown");
  assert.match(String((s.store as { detail: string }).detail), /linkd repair --config/);
  for (const cmd of ["logout", "factory-reset"]) {
    const r = await linkd([cmd, "--config", d.config], work);
    assertNoTrace(r);
    assert.ok(r.code === 0 || r.code === 65, show(r));
  }
});

test("damaged device key record: status reports store.ok false, no crash", async () => {
  const d = copyDevice(signed(), work);
  const image = latin1(Deno.readFileSync(d.flash));
  // The serial is in the clear in the sealed device key's header, written before the identity.
  const first = image.indexOf(SIGNED_SERIAL);
  const identityAt = image.indexOf(latin1(signedRecord));
  assert.ok(first > 0 && first < identityAt, "the sealed device key comes first");
  flipAt(d.flash, first + SIGNED_SERIAL.length + 30); // inside its nonce or ciphertext
  const s = await assertDamaged(d);
  assert.is(s.serial, SIGNED_SERIAL, "the identity itself is intact");
});

test("flash image of the wrong size: exit 78, file untouched", async () => {
  const cases: [string, (b: Uint8Array) => Uint8Array][] = [
    ["longer", (b) => new Uint8Array([...b, 0xff, 0xff, 0xff, 0xff])],
    ["shorter", (b) => b.slice(0, 4096)],
  ];
  await Promise.all(cases.map(async ([name, resize]) => {
    const d = copyDevice(signed(), work);
    const bytes = resize(Deno.readFileSync(d.flash));
    Deno.writeFileSync(d.flash, bytes);
    const otp = Deno.readFileSync(d.otp);
    for (const args of [["status", "--json"], ["logout"], ["provision", "--serial", "X"]]) {
      const full = args[0] === "provision"
        ? [...args, "--product-id", "P", "--client-id", "C", "--config", d.config]
        : [...args, "--config", d.config];
      assertFails(await linkd(full, work), 78, "bytes");
      assertSameBytes(Deno.readFileSync(d.flash), bytes, `${name} flash left as it was`);
      assertSameBytes(Deno.readFileSync(d.otp), otp, `${name} OTP left as it was`);
    }
  }));
});

test("OTP file of garbage: status reports it, provision refuses and changes nothing", async () => {
  const garbage: [string, Uint8Array][] = [
    ["76 random bytes", randomBytes(OTP_BYTES)],
    ["5 bytes", utf8.encode("junk\n")],
  ];
  await Promise.all(garbage.map(async ([name, bytes]) => {
    const d = copyDevice(signed(), work);
    Deno.writeFileSync(d.otp, bytes);
    if (bytes.length === OTP_BYTES) {
      secrets.push({ name: "garbage OTP", bytes: bytes.slice(4, 36) });
    }
    const s = await assertDamaged(d);
    assert.is(s.linked, false);
    const before = snapshot(d);
    const r = await provisionCmd(d, { serial: "NEW-1" });
    // The OTP part is neither blank nor valid: provisioning must not overwrite it.
    assertFails(r, 65, "OTP");
    const after = snapshot(d);
    assertSameBytes(after.otp, before.otp, `${name}: OTP`);
    assertSameBytes(after.flash, before.flash, `${name}: flash`);
  }));
});

test("a flash image of garbage beside a written OTP is damage, never a blank device", async () => {
  const d = copyDevice(signed(), work);
  Deno.writeFileSync(d.flash, randomBytes(FLASH_BYTES));
  const before = snapshot(d);
  const s = await assertDamaged(d);
  assert.is(s.provisioned, true);
  assert.is(s.serial, null);
  assert.match(String((s.store as { detail: string }).detail), /no valid sector/);
  assert.equal(snapshot(d), before, "status wrote nothing");
  // No second serial, and the evidence stays as it was.
  assertFails(await provisionCmd(d, { serial: "OTHER-7" }), 73);
  assert.equal(snapshot(d), before, "flash and OTP byte for byte as they were");
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

// ---- logout and factory-reset need no identity ----------------------------------------------

/** Ways the identity can be unreadable after the tokens were written. */
const IDENTITY_DAMAGE: {
  name: string;
  damage: (d: DeviceDir) => void;
  /** What the one stdout line says of the identity afterwards. */
  says: RegExp;
}[] = [
  {
    name: "identity record damaged on flash",
    damage: (d) => {
      const at = latin1(Deno.readFileSync(d.flash)).indexOf(latin1(signedRecord));
      assert.ok(at > 0, "the identity record is in the image");
      flipAt(d.flash, at + Math.floor(signedRecord.length / 2));
    },
    says: /needs repair/,
  },
  {
    name: "identity record that does not authenticate",
    damage: (d) =>
      withDevice(d, (device) => {
        const rec = device.store.get(RecordType.IDENTITY)!;
        const m = decodeCbor(rec.data) as { envelope: Uint8Array };
        device.store.put(
          RecordType.IDENTITY,
          encodeCbor({ envelope: m.envelope, mac: new Uint8Array(32) }),
        );
      }),
    says: /needs repair/,
  },
  {
    name: "identity record missing",
    damage: (d) => withDevice(d, (device) => device.store.delete(RecordType.IDENTITY)),
    says: /needs repair/,
  },
  {
    name: "OTP file of garbage",
    damage: (d) => Deno.writeFileSync(d.otp, randomBytes(OTP_BYTES)),
    says: /needs repair/,
  },
];

test("logout and factory-reset delete the user's records even when the identity cannot be read", async () => {
  await Promise.all(
    IDENTITY_DAMAGE.flatMap(({ name, damage, says }) =>
      (["logout", "factory-reset"] as const).map(async (cmd) => {
        const d = copyDevice(signed(), work);
        const sealed = putTokens(d, {
          access: randomToken("Atza|", 200),
          refresh: randomToken("Atzr|", 200),
          scopes: ["alexa:all"],
          expiresAt: Date.now() + 3600_000,
          clientId: signedReport.client_id as string,
        });
        const scopes = withDevice(d, (device) => {
          device.vault().put(RecordType.SCOPES, encodeCbor({ granted: ["alexa:all"] }));
          return device.store.get(RecordType.SCOPES)!.data;
        });
        const body = sealedBody(sealed, SIGNED_SERIAL);
        const scopesBody = sealedBody(scopes, SIGNED_SERIAL);
        damage(d);
        const what = `${cmd}, ${name}`;

        const r = await linkd([cmd, "--config", d.config], work);
        const out = assertOk(r);
        assert.is(out.split("\n").length, 2, `one line: ${show(r)}`);
        assert.match(out, cmd === "logout" ? /^Forgot the user's tokens; / : /^Forgot everything/);
        assert.match(out, says, what);

        const keys = withDevice(d, (device) => device.store.keys());
        assert.not.ok(keys.includes(RecordType.TOKENS), `${what}: tokens deleted`);
        assert.ok(keys.includes(RecordType.DEVICE_KEY), `${what}: the device key is kept`);
        assert.is(keys.includes(RecordType.SCOPES), cmd === "logout", `${what}: scopes`);
        const image = latin1(Deno.readFileSync(d.flash));
        assert.is(findWindow(image, body, 32), null, `${what}: no trace of the sealed tokens`);
        if (cmd === "factory-reset") {
          assert.is(findWindow(image, scopesBody, 32), null, `${what}: no trace of the scopes`);
        }
      })
    ),
  );
});

// ---- provisioning starts from a clean store ----------------------------------------------------

test("provision of a device whose OTP holds a key but whose identity is gone clears the old records", async () => {
  const d = copyDevice(signed(), work);
  const sealed = putTokens(d, {
    access: randomToken("Atza|", 200),
    refresh: randomToken("Atzr|", 200),
    scopes: ["alexa:all"],
    expiresAt: Date.now() + 3600_000,
    clientId: signedReport.client_id as string,
  });
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
  const sealed = putTokens(d, {
    access: randomToken("Atza|", 200),
    refresh: randomToken("Atzr|", 200),
    scopes: ["alexa:all"],
    expiresAt: Date.now() + 3600_000,
    clientId: signedReport.client_id as string,
  });
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

// ---- exit codes and the one stderr line ---------------------------------------------------------

test("a flash that exists but cannot be read is exit 65, not 66", async () => {
  assert.is(new LinkdError(Code.FLASH_IO, "x").exitCode, 65);
  assert.is(new LinkdError(Code.FLASH_MISSING, "x").exitCode, 66);
  const d = makeDevice(work);
  Deno.symlinkSync("flash.img", d.flash); // a loop: stat and open fail with ELOOP
  for (const args of [["status", "--json"], ["logout"], ["factory-reset"]]) {
    assertFails(await linkd([...args, "--config", d.config], work), 65, d.flash);
  }
  assertFails(await provisionCmd(d, { serial: "SN1" }), 65, d.flash);
  assert.not.ok(exists(d.otp), "the OTP is not programmed");
});

test("a line break in a path from argv does not split the stderr line", async () => {
  const d = makeDevice(work);
  const config = `${work}/x\ny.json`;
  const r = await linkd(["status", "--config", config], work);
  const line = assertFails(r, 78, `${work}/x y.json`);
  // deno-lint-ignore no-control-regex
  assert.not.match(line, /[\u0000-\u001f]/);
  const key = `${d.dir}/line\r\nkey`;
  assertFails(await provisionCmd(d, { serial: "SN1", lineKey: key }), 66, `${d.dir}/line  key`);
  const tab = `${d.dir}/a\tb\u001b[31m.json`;
  assertFails(await linkd(["status", "--config", tab], work), 78, `${d.dir}/a b [31m.json`);
});

test("files named on the command line or in the config are read with a bound", async () => {
  const within = 60_000; // a read to the end of /dev/zero would never finish
  const d = makeDevice(work);
  const config = await linkd(["status", "--config", "/dev/zero"], work, {}, within);
  assertFails(config, 78, "it is a character device, not a regular file"); // never opened

  const key = await linkd(
    provisionArgs(d, { serial: "SN1", lineKey: "/dev/zero" }),
    work,
    {},
    within,
  );
  assertFails(key, 65, "/dev/zero");
  const big = `${d.dir}/big.key`;
  Deno.writeFileSync(big, new Uint8Array(4097).fill(0x61), { mode: 0o600 });
  const bigLine = assertFails(await provisionCmd(d, { serial: "SN1", lineKey: big }), 65, big);
  assert.match(bigLine, /more than 4096 bytes/);
  assert.not.ok(exists(d.otp) || exists(d.flash), "refused before the device is touched");

  const z = makeDevice(
    work,
    JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "/dev/zero" } }),
  );
  const s = oneJsonLine(await linkd(["status", "--json", "--config", z.config], work, {}, within));
  assert.is(s.provisioned, false);
  const store = s.store as { ok: boolean; detail?: string };
  assert.is(store.ok, false);
  assert.match(String(store.detail), /OTP.*a character device, not a regular file/);
  const p = await linkd(provisionArgs(z, { serial: "SN1" }), work, {}, within);
  assertFails(p, 65, "OTP");
});

// ---- every output of every command ---------------------------------------------------------

test("no secret appears in any output of any command", () => {
  assert.ok(transcript.length >= 60, `only ${transcript.length} commands ran`);
  assert.ok(secrets.filter((s) => s.name === "root key").length >= 5);
  assert.ok(textSecrets.length === 4);
  // The search itself finds a leak, in each form it looks for.
  const root = secrets.find((s) => s.name === "root key")!.bytes;
  assert.ok(leakIn(`key=${hex(root).slice(8, 48).toUpperCase()}`) !== null, "hex control");
  assert.ok(leakIn(`key=${base64(root).slice(4, 24)}`) !== null, "base64 control");
  assert.ok(leakIn(`t=${textSecrets[0]!.text.slice(100, 117)}`) !== null, "token control");
  for (const r of transcript) {
    assertNoSecretIn(r.stdout, `stdout of ${show(r)}`);
    assertNoSecretIn(r.stderr, `stderr of ${show(r)}`);
    assert.not.ok((r.stdout + r.stderr).includes("\u001b["), "NO_COLOR: no escape sequences");
  }
});

test.run();
