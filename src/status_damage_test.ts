/**
 * Damage, exhaustively, as power_loss_test.ts does for power cuts: a damaged flash is never a
 * blank device, and never a healthy device with another identity.
 *
 * Three images of a provisioned device are made with the real provisioning, vault and store code
 * on the emulated NOR part (6 KiB, 6 sectors of 1 KiB, so that every bit can be tried) with fake
 * random: freshly provisioned (one sector in use), linked (tokens, scopes, account), and after
 * several reclaim laps (every sector erased twice or more). Each image gets every single-bit
 * flip, and every 2-bit flip of each of its sector headers; beside the written OTP there are
 * also all-0xFF, zero-length, missing and random images. Each outcome of `statusReport` is
 * classified:
 * - intact: `store.ok` true, provisioned, the identity (and the link) as written;
 * - reported: `store.ok` false with a detail, provisioned, the identity as written or null;
 * - wrong: anything else (healthy with the identity missing or different, `provisioned: false`,
 *   or another identity shown at all). Required: zero.
 * For each outcome `provision` with another serial must be refused with ALREADY_PROVISIONED and
 * leave the flash byte for byte as it was; where the store is healthy and the identity absent,
 * provisioning again with the bound identity must give back the same one. A sample of the
 * damaged outcomes is repaired and must read intact with the same identity afterwards.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { equal, toHex } from "./bytes.ts";
import { encodeCbor } from "./cbor.ts";
import { type Config, parseConfig } from "./config.ts";
import { Device, type DeviceEffects } from "./device.ts";
import { Code, isLinkdError } from "./errors.ts";
import type { FlashGeometry } from "./flash/driver.ts";
import { NorEmulator } from "./flash/nor_emulator.ts";
import { linked } from "./link/scope_book.ts";
import { EMPTY_BOOK, encodeScopeBook } from "./records/scope_book.ts";
import { provision, type ProvisionInput, repair } from "./provision/provision.ts";
import { OtpStore } from "./seal/otp.ts";
import { type StatusReport, statusReport } from "./status.ts";
import { RecordType } from "./records/types.ts";
import { encodeTokenRecord } from "./records/token.ts";
import { bytesOf, prng } from "../test/support/random.ts";
import { seedSigner } from "./provision/line_signer.ts";

const G: FlashGeometry = { size: 6144, eraseSize: 1024, pageSize: 64, writeSize: 4 };
const T0 = 1_700_000_000_000;
const ID: ProvisionInput = {
  serial: "SN-DAMAGE-1",
  productId: "Echo_Mini-1",
  clientId: "amzn1.application-oa2-client.damage",
  lineSigner: seedSigner(new Uint8Array(32).fill(7)),
};
const OTHER: ProvisionInput = { ...ID, serial: "SN-OTHER-2" };

const dir = Deno.makeTempDirSync({ prefix: "linkd-damage-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

const base = parseConfig(
  JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }),
  `${dir}/linkd.json`,
);
/** The small part, for in-memory devices (the config's checks want a real partition's size). */
const config: Config = { ...base, flash: { ...base.flash, ...G } };

function fakeEffects(seed: number): DeviceEffects {
  const rand = prng(seed);
  return { random: (n) => bytesOf(rand, n) };
}

const fx = fakeEffects(11);
const otp = OtpStore.open(config.keys.otpPath);

const device = (image: Uint8Array) =>
  Device.fromParts(config, NorEmulator.fromImage(image, G), otp, fx);

/** Runs `fn` `n` times and returns microseconds per run (to see where the time goes). */
export function perRun(n: number, fn: () => void): number {
  const t = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - t) / n) * 1000;
}

interface Expected {
  serial: string;
  device_public_key: string;
  linked: boolean;
  access_expires_at: number | null;
}

// ---- the three images --------------------------------------------------------------------------

const flash = NorEmulator.memory(G);
const d0 = Device.fromParts(config, flash, otp, fx);
const { signed } = provision(d0, ID, () => T0);
const fresh = flash.image();
const tokens = (i: number) =>
  encodeTokenRecord({
    access_token: `Atza|access-${i}`,
    refresh_token: `Atzr|refresh-${i}`,
    token_type: "bearer",
    scopes: ["alexa:all"],
    expires_in: 3600,
    obtained_at: T0 + i * 1000,
    expires_at: T0 + i * 1000 + 3600_000,
    client_id: ID.clientId,
  });
const vault = d0.vault();
vault.put(RecordType.TOKENS, tokens(1));
vault.put(RecordType.SCOPES, encodeScopeBook(linked(EMPTY_BOOK, ["alexa:all"])));
vault.put(RecordType.ACCOUNT, encodeCbor({ fingerprint: "0".repeat(32) }));
const linkedImage = flash.image();
let refreshes = 1;
while (Math.min(...flash.eraseCounts()) < 3) vault.put(RecordType.TOKENS, tokens(++refreshes));
const lapped = flash.image();
d0.close();

const identityOf = {
  serial: ID.serial,
  device_public_key: toHex(signed.identity.device_public_key),
};
const IMAGES: { name: string; image: Uint8Array; want: Expected }[] = [
  {
    name: "freshly provisioned",
    image: fresh,
    want: { ...identityOf, linked: false, access_expires_at: null },
  },
  {
    name: "linked",
    image: linkedImage,
    want: { ...identityOf, linked: true, access_expires_at: T0 + 1000 + 3600_000 },
  },
  {
    name: `after ${refreshes} refreshes (3+ reclaim laps)`,
    image: lapped,
    want: { ...identityOf, linked: true, access_expires_at: T0 + refreshes * 1000 + 3600_000 },
  },
];

// ---- classification ----------------------------------------------------------------------------

interface Counts {
  intact: number;
  reportedWithIdentity: number;
  reportedNoIdentity: number;
  wrong: number;
  repaired: number;
  resumed: number;
}

const newCounts = (): Counts => ({
  intact: 0,
  reportedWithIdentity: 0,
  reportedNoIdentity: 0,
  wrong: 0,
  repaired: 0,
  resumed: 0,
});

const wrongCases: string[] = [];

function sameIdentity(r: StatusReport, want: Expected): boolean {
  return r.serial === want.serial && r.device_public_key === want.device_public_key &&
    r.product_id === ID.productId && r.client_id === ID.clientId;
}

/** Classifies one damaged image; `repairIt` also repairs a damaged outcome and checks it. */
function classify(
  image: Uint8Array,
  want: Expected,
  c: Counts,
  where: string,
  repairIt: boolean,
): void {
  const d = device(image);
  const r = statusReport(d);
  const noIdentity = r.serial === null && r.product_id === null && r.client_id === null &&
    r.device_public_key === null;
  let kind: "intact" | "reportedWithIdentity" | "reportedNoIdentity" | "wrong";
  if (!r.provisioned) kind = "wrong";
  else if (r.store.ok) {
    kind = sameIdentity(r, want) && r.linked === want.linked &&
        r.access_expires_at === want.access_expires_at
      ? "intact"
      : "wrong";
  } else if (!r.store.detail) kind = "wrong";
  else if (sameIdentity(r, want)) kind = "reportedWithIdentity";
  else kind = noIdentity ? "reportedNoIdentity" : "wrong";
  c[kind]++;
  if (kind === "wrong" && wrongCases.length < 10) {
    wrongCases.push(`${where}: ${JSON.stringify(r)}`);
  }

  // Provisioning another serial is refused before anything is written (on the same device:
  // status wrote nothing, and a write would show in its image).
  let code = "";
  try {
    provision(d, OTHER, () => T0);
  } catch (e) {
    code = isLinkdError(e) ? e.code : String(e);
  }
  if (code !== Code.ALREADY_PROVISIONED || !equal((d.flash as NorEmulator).image(), image)) {
    c.wrong++;
    if (wrongCases.length < 10) wrongCases.push(`${where}: provision of another serial: ${code}`);
  }

  // Healthy without an identity: provisioning again gives back the same identity.
  if (r.store.ok === false && noIdentity && d.store.health.ok && !d.store.keys().length) {
    const again = Device.fromParts(config, NorEmulator.fromImage(image, G), otp, fx);
    const { signed: s } = provision(again, ID, () => T0 + 1);
    assert.is(toHex(s.identity.device_public_key), want.device_public_key, where);
    c.resumed++;
  }

  if (repairIt && !r.store.ok) {
    const rdev = NorEmulator.fromImage(image, G);
    const fixed = Device.fromParts(config, rdev, otp, fx);
    repair(fixed, ID, () => T0 + 2);
    const after = statusReport(device(rdev.image()));
    assert.ok(after.store.ok, `${where}: after repair: ${JSON.stringify(after)}`);
    assert.ok(sameIdentity(after, want), `${where}: repair gave another identity`);
    c.repaired++;
  }
}

function flip(image: Uint8Array, ...bits: number[]): Uint8Array {
  const img = image.slice();
  for (const bit of bits) img[bit >> 3]! ^= 1 << (bit & 7);
  return img;
}

function show(name: string, c: Counts, n: number, ms: number): void {
  console.log(
    `  ${name}: ${n} outcomes: ${c.intact} intact, ${c.reportedWithIdentity} reported with the identity, ${c.reportedNoIdentity} reported without it, ${c.wrong} wrong (${c.resumed} resumed and ${c.repaired} repaired to the same identity; ${
      (ms / 1000).toFixed(1)
    } s)`,
  );
}

// ---- the tests ---------------------------------------------------------------------------------

test("status of the three undamaged images: intact", () => {
  for (const { name, image, want } of IMAGES) {
    const c = newCounts();
    classify(image, want, c, name, false);
    assert.is(c.intact, 1, name);
  }
});

for (const { name, image, want } of IMAGES) {
  test(`statusReport: every single-bit flip of the ${name} image is intact or reported`, () => {
    const t0 = performance.now();
    const c = newCounts();
    const bits = image.length * 8;
    for (let bit = 0; bit < bits; bit++) {
      classify(flip(image, bit), want, c, `${name}, bit ${bit}`, bit % 509 === 0);
    }
    show(`${name}, 1-bit flips`, c, bits, performance.now() - t0);
    assert.equal(wrongCases, []);
    assert.is(c.wrong, 0);
    assert.is(c.intact + c.reportedWithIdentity + c.reportedNoIdentity, bits);
  });

  test(`statusReport: every 2-bit flip of each sector header of the ${name} image`, () => {
    const t0 = performance.now();
    const c = newCounts();
    let n = 0;
    for (let s = 0; s < G.size / G.eraseSize; s++) {
      const at = s * G.eraseSize;
      if (image.subarray(at, at + 16).every((b) => b === 0xff)) continue; // no header there
      for (let a = 0; a < 128; a++) {
        for (let b = a + 1; b < 128; b++) {
          const where = `${name}, sector ${s} header bits ${a},${b}`;
          classify(flip(image, at * 8 + a, at * 8 + b), want, c, where, n % 997 === 0);
          n++;
        }
      }
    }
    show(`${name}, 2-bit header flips`, c, n, performance.now() - t0);
    assert.equal(wrongCases, []);
    assert.is(c.wrong, 0);
  });
}

test("statusReport: all-0xFF and random images beside a written OTP are reported, never blank", () => {
  const c = newCounts();
  const want = IMAGES[0]!.want;
  classify(new Uint8Array(G.size).fill(0xff), want, c, "all 0xFF", true);
  classify(new Uint8Array(G.size), want, c, "all 0x00", true);
  const rand = prng(99);
  for (let i = 0; i < 200; i++) classify(bytesOf(rand, G.size), want, c, `random ${i}`, i < 20);
  show("0xFF, 0x00 and 200 random images", c, 202, 0);
  assert.equal(wrongCases, []);
  assert.is(c.intact, 0);
  assert.is(c.reportedWithIdentity, 0);
  assert.is(c.reportedNoIdentity, 202);
});

test("status of a missing, empty, erased or random flash file beside a written OTP: damaged, no file written", () => {
  const fileConfig = parseConfig(
    JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }),
    `${dir}/linkd.json`,
  );
  const size = fileConfig.flash.size;
  const rand = prng(5);
  const cases: [string, Uint8Array | null, RegExp][] = [
    ["missing", null, /is missing/],
    ["zero-length", new Uint8Array(0), /is empty/],
    ["all 0xFF", new Uint8Array(size).fill(0xff), /no identity record/],
    ["random", bytesOf(rand, size), /no valid sector/],
  ];
  for (const [name, bytes, says] of cases) {
    const path = fileConfig.flash.path;
    try {
      Deno.removeSync(path);
    } catch { /* not there */ }
    if (bytes) Deno.writeFileSync(path, bytes);
    const d = Device.open(fileConfig, fx, { readOnly: true });
    let r: StatusReport;
    try {
      r = statusReport(d);
    } finally {
      d.close();
    }
    assert.is(r.provisioned, true, name);
    assert.is(r.store.ok, false, name);
    assert.is(r.serial, null, name);
    assert.match(r.store.detail ?? "", says, name);
    assert.match(r.store.detail ?? "", /linkd repair --config/, name);
    if (bytes) assert.ok(equal(Deno.readFileSync(path), bytes), `${name}: file unchanged`);
    else assert.throws(() => Deno.statSync(path), undefined, `${name}: no file created`);
  }
});

test.run();
