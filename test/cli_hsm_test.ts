/**
 * The line key in an HSM, end to end (issue 14): the real `linkd` executable, run as a
 * subprocess on emulated devices, provisions with `--line-key pkcs11:...` against Debian's
 * SoftHSM2 (test/support/softhsm.ts; SOFTHSM2_CONF in the child's environment). python3-nacl
 * verifies the `--record-out` bytes against the token's public key as pkcs11-tool reads it,
 * `status` shows the device provisioned, and the ledger exports the record with that key and
 * verifies. The refusals (a wrong PIN, a PIN file group or others may read, `pin-value=`) are
 * exit 65 with one line on stderr, the device byte for byte as it was, the serial not reserved
 * in the ledger, and no PIN in any output of any command. Skipped without SoftHSM2 and OpenSC,
 * never on CI (env CI).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  assertFails,
  assertSameBytes,
  type DeviceDir,
  exists,
  hex,
  linkd,
  listing,
  makeDevice,
  oneJsonLine,
  provisionArgs,
  python,
  show,
  snapshot,
  status,
  transcript,
  useWork,
} from "./support/cli.ts";
import { pythonHas, whenPython } from "./support/python.ts";
import {
  KEY_LABEL,
  type SoftHsm,
  SOFTHSM_MODULE,
  startSoftHsm,
  TOKEN_LABEL,
  USER_PIN,
  whenSoftHsm,
} from "./support/softhsm.ts";

const work = useWork("linkd-cli-hsm-");
const havePeers = await pythonHas("nacl.signing, cbor2");
const hsmTest = whenSoftHsm(test) === test
  ? whenPython(test, havePeers, "the HSM tests: python3-nacl and python3-cbor2")
  : test.skip;
let hsm: SoftHsm | undefined;
test.before(async () => {
  if (hsmTest === test) hsm = await startSoftHsm();
});
test.after(() => hsm?.cleanup());

/**
 * The token's public key as OpenSC's pkcs11-tool reads it (`--read-object --type pubkey`, a
 * SubjectPublicKeyInfo whose last 32 bytes are the key), not as linkd reads it.
 */
async function tokenPublicKey(): Promise<string> {
  const pem = new TextDecoder().decode(
    await hsm!.tool(["--read-object", "--type", "pubkey", "--label", KEY_LABEL]),
  );
  assert.match(pem, /^-----BEGIN PUBLIC KEY-----/);
  const der = Uint8Array.from(
    atob(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "")),
    (c) => c.charCodeAt(0),
  );
  assert.is(der.length, 44, "an Ed25519 SubjectPublicKeyInfo");
  return hex(der.slice(12));
}

/** A PIN the token does not have, as distinctive as USER_PIN, to look for in every output. */
const WRONG_PIN = "0000-wrong-pin-never-shown";

/** The child's environment: the SoftHSM2 configuration naming the test's token folder. */
function hsmEnv(): Record<string, string> {
  const conf = Deno.env.get("SOFTHSM2_CONF");
  assert.ok(conf !== undefined, "startSoftHsm sets SOFTHSM2_CONF");
  return { SOFTHSM2_CONF: conf };
}

/** `linkd provision` of `d` with the line key `lineKey` and `more` arguments. */
function provision(d: DeviceDir, serial: string, lineKey: string, more: string[] = []) {
  return linkd([...provisionArgs(d, { serial, lineKey }), ...more], work, hsmEnv());
}

/** The token's key with the PIN file `pinFile` instead of the right one. */
function uriWithPin(pinFile: string): string {
  return hsm!.uri.replace(`pin-source=file:${hsm!.pinFile}`, `pin-source=file:${pinFile}`);
}

async function exportOf(ledger: string): Promise<Record<string, unknown>[]> {
  const r = await linkd(["ledger", "export", "--ledger", ledger], work);
  assert.is(r.code, 0, show(r));
  return r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l));
}

/** The serials a ledger file holds in any state (reserved or confirmed), read with SQL. */
async function serialsIn(ledger: string): Promise<string[]> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(ledger.slice("sqlite:".length));
  try {
    const rows = db.prepare("SELECT serial FROM linkd_devices ORDER BY serial").all();
    return rows.map((r) => String((r as { serial: unknown }).serial));
  } finally {
    db.close();
  }
}

/** Asserts `d` holds exactly what `before` and `files` say: no file created, none changed. */
function assertUntouched(
  d: DeviceDir,
  before: ReturnType<typeof snapshot>,
  files: string[],
  what: string,
): void {
  const after = snapshot(d);
  assertSameBytes(after.flash, before.flash, `flash after ${what}`);
  assertSameBytes(after.otp, before.otp, `OTP after ${what}`);
  assert.equal(listing(d.dir), files, `no file created or removed by ${what}`);
}

// Reads a --record-out file as the line's tools would and checks its signature against the
// token's public key given on the command line (not the key the file carries).
const CHECK_PY = `
import sys, json, hashlib, cbor2, nacl.signing, nacl.exceptions
env = cbor2.loads(open(sys.argv[1], "rb").read())
key = nacl.signing.VerifyKey(bytes.fromhex(sys.argv[2]))
rb, sig = env["record"], env["signature"]
def verifies(msg, s):
    try:
        key.verify(msg, s)
        return True
    except nacl.exceptions.BadSignatureError:
        return False
t = bytearray(rb); t[len(rb) // 2] ^= 1
print(json.dumps({
    "verified": verifies(rb, sig),
    "tampered_verified": verifies(bytes(t), sig),
    "record": rb.hex(),
    "signature": sig.hex(),
    "line_public_key": env["line_public_key"].hex(),
    "sha512": hashlib.sha512(rb).hexdigest(),
    "serial": cbor2.loads(rb)["serial"],
}))
`;

interface Checked {
  verified: boolean;
  tampered_verified: boolean;
  record: string;
  signature: string;
  line_public_key: string;
  sha512: string;
  serial: string;
}

/** Provisions `d` as `serial` with the HSM's key; returns the report and the checked record. */
async function provisionWithHsm(
  d: DeviceDir,
  serial: string,
  more: string[] = [],
): Promise<{ report: Record<string, unknown>; rec: Checked }> {
  const out = `${d.dir}/record.cbor`;
  const report = oneJsonLine(await provision(d, serial, hsm!.uri, ["--record-out", out, ...more]));
  const key = await tokenPublicKey();
  const rec = await python(CHECK_PY, [out, key]) as Checked;
  assert.is(rec.verified, true, "python3-nacl verifies the record with the token's key");
  assert.is(rec.tampered_verified, false, "a changed record does not verify");
  assert.is(rec.serial, serial);
  assert.is(rec.line_public_key, key, "the record-out names the token's key");
  assert.is(report.line_signature, rec.signature, "line_signature is the record-out's signature");
  assert.is(report.record_sha512, rec.sha512);
  return { report, rec };
}

hsmTest(
  "provision --line-key pkcs11:...: signed in the HSM, verified by python3-nacl",
  async () => {
    const d = makeDevice(work);
    const { report } = await provisionWithHsm(d, "SN-H0001");
    const s = oneJsonLine(await status(d));
    assert.is(s.provisioned, true, "status shows the device provisioned");
    assert.is(s.serial, "SN-H0001");
    assert.is(s.device_public_key, report.device_public_key);
    assert.equal(listing(d.dir), ["flash.img", "linkd.json", "otp.bin", "record.cbor"]);
  },
);

hsmTest(
  "provision with the HSM and a ledger: export has the token's key, verify says ok",
  async () => {
    const ledger = `sqlite:${work}/plant-a.db`;
    const d = makeDevice(work);
    const { report, rec } = await provisionWithHsm(d, "SN-H0101", [
      "--ledger",
      ledger,
      "--station",
      "st-1",
    ]);
    const rows = await exportOf(ledger);
    assert.is(rows.length, 1);
    const row = rows[0]!;
    assert.is(row.serial, "SN-H0101");
    assert.is(row.station, "st-1");
    assert.is(row.device_public_key, report.device_public_key);
    assert.is(row.record, rec.record, "the ledger's record is the bytes --record-out wrote");
    assert.is(row.signature, rec.signature);
    assert.is(row.line_public_key, await tokenPublicKey());
    const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
    assert.is(v.code, 0, show(v));
    assert.match(v.stdout, /^ok: 1 devices/);
  },
);

hsmTest(
  "a wrong PIN: 65 naming CKR_PIN_INCORRECT, device untouched, serial not reserved",
  async () => {
    const ledger = `sqlite:${work}/plant-b.db`;
    const first = makeDevice(work);
    await provisionWithHsm(first, "SN-H0200", ["--ledger", ledger, "--station", "st-1"]);
    const wrong = `${work}/wrong.pin`;
    Deno.writeTextFileSync(wrong, `${WRONG_PIN}\n`, { mode: 0o600 });
    Deno.chmodSync(wrong, 0o600);
    const d = makeDevice(work);
    const before = snapshot(d);
    const files = listing(d.dir);
    const r = await provision(d, "SN-H0201", uriWithPin(wrong), [
      "--ledger",
      ledger,
      "--station",
      "st-1",
      "--record-out",
      `${d.dir}/record.cbor`,
    ]);
    const line = assertFails(r, 65, "CKR_PIN_INCORRECT");
    assert.match(line, /check pin-source/);
    assert.not.ok(line.includes(WRONG_PIN) || line.includes(USER_PIN), "no PIN in the message");
    assertUntouched(d, before, files, show(r));
    // Nothing reserved: the ledger has only the first device, and another station gets the serial.
    assert.equal(await serialsIn(ledger), ["SN-H0200"]);
    assert.equal((await exportOf(ledger)).map((x) => x.serial), ["SN-H0200"]);
    await provisionWithHsm(d, "SN-H0201", ["--ledger", ledger, "--station", "st-2"]);
    const rows = await exportOf(ledger);
    assert.equal(rows.map((x) => [x.serial, x.station]), [["SN-H0200", "st-1"], [
      "SN-H0201",
      "st-2",
    ]]);
    const v = await linkd(["ledger", "verify", "--ledger", ledger], work);
    assert.is(v.code, 0, show(v));
  },
);

hsmTest(
  "a PIN file group or others may read (0644): 65, device untouched, nothing reserved",
  async () => {
    const open = `${work}/open.pin`;
    Deno.writeTextFileSync(open, `${USER_PIN}\n`, { mode: 0o644 });
    Deno.chmodSync(open, 0o644);
    const ledger = `sqlite:${work}/plant-c.db`;
    const d = makeDevice(work);
    const before = snapshot(d);
    const files = listing(d.dir);
    const r = await provision(d, "SN-H0301", uriWithPin(open), [
      "--ledger",
      ledger,
      "--station",
      "st-1",
    ]);
    // CONTRACT.md section 1: 65 is bad input data; the key and its PIN are the line's input.
    const line = assertFails(r, 65, "mode 0644");
    assert.match(line, new RegExp(`run chmod 600 ${open}$`));
    assertUntouched(d, before, files, show(r));
    const file = ledger.slice("sqlite:".length);
    assert.equal(exists(file) ? await serialsIn(ledger) : [], [], "nothing reserved");
  },
);

hsmTest("pin-value= in the URI: 65, the PIN not echoed, device untouched", async () => {
  const uri =
    `pkcs11:token=${TOKEN_LABEL};object=${KEY_LABEL}?module-path=${SOFTHSM_MODULE}&pin-value=${USER_PIN}`;
  const d = makeDevice(work);
  const before = snapshot(d);
  const files = listing(d.dir);
  const r = await provision(d, "SN-H0401", uri);
  const line = assertFails(r, 65, "pin-value");
  assert.match(line, /pin-source=file:PATH/);
  assert.not.ok(line.includes(USER_PIN), "the PIN is not echoed");
  assertUntouched(d, before, files, show(r));
});

hsmTest("no PIN, right or wrong, in any output of any command", () => {
  assert.ok(transcript.length >= 10, `only ${transcript.length} commands ran`);
  const utf8 = new TextEncoder();
  for (const pin of [USER_PIN, WRONG_PIN]) {
    const forms = [pin, pin.slice(5), hex(utf8.encode(pin)), btoa(pin).slice(0, 20)];
    for (const r of transcript) {
      for (const form of forms) {
        assert.not.ok(r.stdout.includes(form), `a PIN in stdout of ${show(r)}`);
        assert.not.ok(r.stderr.includes(form), `a PIN in stderr of ${show(r)}`);
      }
    }
  }
});

test.run();
