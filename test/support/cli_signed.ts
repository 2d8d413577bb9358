/**
 * The provisioned device the CLI tests share, and the factory record check: a Python peer
 * (Debian's python3 with python3-cbor2 and python3-nacl) reads a `--record-out` file as the
 * factory line's tools would, and `checkProvision` holds a provision report and its record
 * against each other and CONTRACT.md section 3. `provisionSigned` provisions a device with a
 * raw line key once per test file; the tests that need a provisioned device copy it.
 */
import * as assert from "uvu/assert";
import {
  type DeviceDir,
  exists,
  FLASH_BYTES,
  fromHexString,
  listing,
  makeDevice,
  oneJsonLine,
  OTP_BYTES,
  provisionCmd,
  type ProvisionOptions,
  python,
  randomBytes,
  type Run,
  show,
  workFolder,
} from "./cli.ts";
import { secrets } from "./cli_secrets.ts";

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

export const REPORT_KEYS = [
  "client_id",
  "device_public_key",
  "product_id",
  "record_sha512",
  "serial",
];
const RECORD_KEYS = ["client_id", "device_public_key", "product_id", "provisioned_at", "serial"];

/** Checks a provision report and its record-out file against each other and CONTRACT.md 3. */
export async function checkProvision(
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

// The shared device: provisioned once per test file, copied by the tests that need one.
export let signedDevice: DeviceDir | null = null;
export let signedReport: Record<string, unknown> = {};
export let signedRecord: Uint8Array = new Uint8Array(0);
export const SIGNED_SERIAL = "SN-2024.0001_a";

export function signed(): DeviceDir {
  assert.ok(signedDevice !== null, "the provisioned device of an earlier test is missing");
  return signedDevice!;
}

/**
 * Provisions a device in the work folder with a raw 32-byte line key and a `--record-out`,
 * checks the report and the record (python3-nacl verifies the signature), registers the line
 * seed and the root key as secrets, and makes it the shared device.
 */
export async function provisionSigned(): Promise<void> {
  const work = workFolder();
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
}
