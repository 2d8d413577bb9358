import { test } from "uvu";
import * as assert from "uvu/assert";
import nacl from "tweetnacl";
import { toHex, utf8 } from "../bytes.ts";
import { throwsCode } from "../../test/support/assert.ts";
import {
  BINDING_BYTES,
  OTP_CHECK_BYTES,
  OTP_FILE_BYTES,
  OTP_V1_FILE_BYTES,
  OtpStore,
  ROOT_KEY_BYTES,
} from "./otp.ts";

/** Runs `f` with a fresh temp folder, removed afterwards. */
function inTemp(f: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-otp-" });
  try {
    f(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const key = () => nacl.randomBytes(ROOT_KEY_BYTES);

test("OtpStore file layout constants", () => {
  assert.is(ROOT_KEY_BYTES, 32);
  assert.is(OTP_CHECK_BYTES, 8);
  assert.is(BINDING_BYTES, 32);
  assert.is(OTP_FILE_BYTES, 76);
  assert.is(OTP_V1_FILE_BYTES, 44);
});

test("OtpStore.program() with a binding writes format 2: magic, key, binding, check", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    const k = key();
    const binding = nacl.randomBytes(BINDING_BYTES);
    OtpStore.open(path).program(k, binding);
    const image = Deno.readFileSync(path);
    assert.is(image.length, 76);
    assert.is(new TextDecoder().decode(image.subarray(0, 4)), "LKO2");
    assert.is(toHex(image.subarray(4, 36)), toHex(k));
    assert.is(toHex(image.subarray(36, 68)), toHex(binding));
    assert.is(toHex(image.subarray(68)), toHex(nacl.hash(image.subarray(0, 68)).subarray(0, 8)));
    const c = OtpStore.open(path).contentsIfProgrammed()!;
    assert.is(toHex(c.rootKey), toHex(k));
    assert.is(toHex(c.binding!), toHex(binding));
    // Every single-bit flip of a format 2 file is caught, the binding's too.
    for (let i = 0; i < image.length * 8; i++) {
      const bad = image.slice();
      bad[i >> 3]! ^= 1 << (i & 7);
      Deno.writeFileSync(path, bad);
      throwsCode(() => OtpStore.open(path).contentsIfProgrammed(), "OTP_CORRUPT");
    }
    // A format 1 part reads, without a binding.
    Deno.removeSync(path);
    OtpStore.open(path).program(k);
    assert.is(Deno.statSync(path).size, OTP_V1_FILE_BYTES);
    assert.is(OtpStore.open(path).contentsIfProgrammed()!.binding, null);
    assert.throws(() => OtpStore.open(`${dir}/x`).program(k, new Uint8Array(31)), TypeError);
  });
});

test("OtpStore.state() is blank for a missing file and creates nothing", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    const otp = OtpStore.open(path);
    assert.is(otp.state(), "blank");
    throwsCode(() => otp.readRootKey(), "OTP_BLANK", path);
    assert.throws(() => Deno.statSync(path), (e: unknown) => e instanceof Deno.errors.NotFound);
  });
});

test("OtpStore.state() is blank for an empty file, and program() fills it", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    Deno.writeFileSync(path, new Uint8Array(0));
    const otp = OtpStore.open(path);
    assert.is(otp.state(), "blank");
    throwsCode(() => otp.readRootKey(), "OTP_BLANK");
    assert.is(otp.rootKeyIfProgrammed(), null);
    const k = key();
    otp.program(k);
    assert.is(otp.state(), "programmed");
    assert.is(toHex(otp.readRootKey()), toHex(k));
    assert.is(toHex(otp.rootKeyIfProgrammed()!), toHex(k));
    assert.is(Deno.statSync(path).size, OTP_V1_FILE_BYTES);
  });
});

test("OtpStore.program() writes magic, key and check, and the key reads back", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    const k = key();
    OtpStore.open(path).program(k);
    const image = Deno.readFileSync(path);
    assert.is(image.length, 44);
    assert.is(new TextDecoder().decode(image.subarray(0, 4)), "LKO1");
    assert.is(toHex(image.subarray(4, 36)), toHex(k));
    const h = nacl.hash(image.subarray(0, 36));
    assert.is(toHex(image.subarray(36)), toHex(h.subarray(0, 8)));
    // A new store over the same file (a reboot) reads the same key.
    const again = OtpStore.open(path);
    assert.is(again.state(), "programmed");
    const back = again.readRootKey();
    assert.is(back.length, ROOT_KEY_BYTES);
    assert.is(toHex(back), toHex(k));
    // readRootKey() hands out a copy: wiping it does not change the part.
    back.fill(0);
    assert.is(toHex(again.readRootKey()), toHex(k));
    if (Deno.build.os !== "windows") assert.is(Deno.statSync(path).mode! & 0o777, 0o600);
  });
});

test("OtpStore.program() a second time is OTP_PROGRAMMED and leaves the file unchanged", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    const otp = OtpStore.open(path);
    const first = key();
    otp.program(first);
    const before = Deno.readFileSync(path);
    const mtime = Deno.statSync(path).mtime?.getTime();
    const second = key();
    const e = throwsCode(() => otp.program(second), "OTP_PROGRAMMED", "already programmed");
    assert.not.ok(e.message.includes(toHex(second)), "message carries no key bytes");
    assert.not.ok(e.message.includes(toHex(first)), "message carries no key bytes");
    throwsCode(() => OtpStore.open(path).program(first), "OTP_PROGRAMMED");
    assert.is(toHex(Deno.readFileSync(path)), toHex(before));
    assert.is(Deno.statSync(path).mtime?.getTime(), mtime);
    assert.is(toHex(otp.readRootKey()), toHex(first));
  });
});

test("OtpStore reports a damaged file as OTP_CORRUPT and never reprograms it", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    const k = key();
    OtpStore.open(path).program(k);
    const good = Deno.readFileSync(path);
    const otp = OtpStore.open(path);
    // Every single-bit flip anywhere in the file is caught.
    for (let i = 0; i < good.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = good.slice();
        bad[i] = bad[i]! ^ (1 << bit);
        Deno.writeFileSync(path, bad);
        throwsCode(() => otp.state(), "OTP_CORRUPT");
        throwsCode(() => otp.readRootKey(), "OTP_CORRUPT");
        throwsCode(() => otp.rootKeyIfProgrammed(), "OTP_CORRUPT");
      }
    }
    const bad = good.slice();
    bad[10] = bad[10]! ^ 0xff;
    Deno.writeFileSync(path, bad);
    throwsCode(() => otp.readRootKey(), "OTP_CORRUPT", "integrity check failed");
    throwsCode(() => otp.program(key()), "OTP_CORRUPT");
    assert.is(toHex(Deno.readFileSync(path)), toHex(bad), "corrupt file left as it was");
    // Truncated, extended, wrong magic, and a non-empty file that is not a part at all.
    Deno.writeFileSync(path, good.subarray(0, 43));
    throwsCode(() => otp.state(), "OTP_CORRUPT", "43 bytes, expected 76 (or 44)");
    Deno.writeFileSync(path, new Uint8Array([...good, 0]));
    throwsCode(() => otp.state(), "OTP_CORRUPT", "45 bytes, expected 76 (or 44)");
    const magic = good.slice();
    magic[3] = 0x32; // "LKO2" on a file of format 1's size
    Deno.writeFileSync(path, magic);
    throwsCode(() => otp.state(), "OTP_CORRUPT", "magic");
    Deno.writeFileSync(path, utf8.encode("\n"));
    throwsCode(() => otp.state(), "OTP_CORRUPT");
    throwsCode(() => otp.program(key()), "OTP_CORRUPT");
    Deno.writeFileSync(path, new Uint8Array(44).fill(0xff));
    const e = throwsCode(() => otp.readRootKey(), "OTP_CORRUPT");
    assert.not.ok(e.message.includes(toHex(k)));
  });
});

test("OtpStore reads at most 77 bytes: a bigger file or an endless device is OTP_CORRUPT", () => {
  inTemp((dir) => {
    const path = `${dir}/otp`;
    Deno.writeFileSync(path, new Uint8Array(8 << 20).fill(0x41));
    const big = OtpStore.open(path);
    throwsCode(() => big.state(), "OTP_CORRUPT", "more than 76 bytes");
    throwsCode(() => big.program(key()), "OTP_CORRUPT");
    assert.is(Deno.statSync(path).size, 8 << 20, "left as it was");
  });
  // /dev/zero claims 0 bytes and never ends: it is not opened at all (files.ts), never blank.
  const zero = OtpStore.open("/dev/zero");
  throwsCode(() => zero.state(), "OTP_CORRUPT", "a character device, not a regular file");
  throwsCode(() => zero.readRootKey(), "OTP_CORRUPT");
});

test("OtpStore.open() with a missing folder is OTP_MISSING naming the folder", () => {
  inTemp((dir) => {
    const folder = `${dir}/no/such`;
    const e = throwsCode(() => OtpStore.open(`${folder}/otp`), "OTP_MISSING", folder);
    assert.ok(e.message.includes("create it"), e.message);
    assert.is(e.exitCode, 66);
    // A file where the folder should be.
    Deno.writeFileSync(`${dir}/plain`, new Uint8Array(1));
    throwsCode(() => OtpStore.open(`${dir}/plain/otp`), "OTP_MISSING", `${dir}/plain`);
  });
});

test("OtpStore with its folder removed after open is OTP_MISSING, not blank", () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-otp-" });
  const otp = OtpStore.open(`${dir}/otp`);
  Deno.removeSync(dir, { recursive: true });
  throwsCode(() => otp.state(), "OTP_MISSING", dir);
  throwsCode(() => otp.program(key()), "OTP_MISSING", dir);
});

test("OtpStore.program() refuses a key of the wrong size or a constant key", () => {
  inTemp((dir) => {
    const otp = OtpStore.open(`${dir}/otp`);
    const isType = (e: unknown) => e instanceof TypeError;
    assert.throws(() => otp.program(new Uint8Array(31)), isType);
    assert.throws(() => otp.program(new Uint8Array(33).fill(1)), isType);
    assert.throws(() => otp.program(new Uint8Array(32)), isType);
    assert.throws(() => otp.program(new Uint8Array(32).fill(0xff)), isType);
    assert.is(otp.state(), "blank");
  });
});

test("OtpStore at a folder's path is OTP_CORRUPT", () => {
  inTemp((dir) => {
    Deno.mkdirSync(`${dir}/otp`);
    throwsCode(() => OtpStore.open(`${dir}/otp`).state(), "OTP_CORRUPT", "folder");
  });
});

test.run();
