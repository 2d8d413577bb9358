/**
 * Integration tests of the `linkd` executable's `status`, `logout` and `factory-reset`
 * (CONTRACT.md section 1): the status object of a fresh and a provisioned device, secrets that
 * stay sealed, tokens that logout and factory-reset forget (even when the identity cannot be
 * read), and damage reported, never a crash. Run as real subprocesses on emulated devices.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { decodeCbor, encodeCbor } from "../src/cbor.ts";
import { RecordType } from "../src/records/types.ts";
import {
  assertDamaged,
  assertFails,
  assertNoTrace,
  assertOk,
  assertSameBytes,
  copyDevice,
  type DeviceDir,
  findWindow,
  FLASH_BYTES,
  flipAt,
  FRESH_STATUS,
  hex,
  latin1,
  linkd,
  listing,
  makeDevice,
  oneJsonLine,
  OTP_BYTES,
  provisionCmd,
  randomBytes,
  randomToken,
  rootKeyOf,
  show,
  snapshot,
  status,
  useWork,
} from "./support/cli.ts";
import {
  deviceSeed,
  putTokens,
  putUserTokens,
  sealedBody,
  withDevice,
} from "./support/cli_device.ts";
import {
  assertNoSecretIn,
  assertNoSecretInFlash,
  assertNoSecretInTranscript,
  secrets,
  textSecrets,
} from "./support/cli_secrets.ts";
import {
  provisionSigned,
  signed,
  SIGNED_SERIAL,
  signedRecord,
  signedReport,
} from "./support/cli_signed.ts";

const work = useWork("linkd-cli-status-test-");
const utf8 = new TextEncoder();
test.before(async () => {
  await provisionSigned();
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
        const sealed = putUserTokens(d, signedReport.client_id as string);
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

// ---- every output of every command ---------------------------------------------------------

test("no secret appears in any output of any command", () => {
  assertNoSecretInTranscript({ commands: 30, rootKeys: 1, textSecrets: 4 });
});

test.run();
