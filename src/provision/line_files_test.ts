import { test } from "uvu";
import * as assert from "uvu/assert";
import { failsWith } from "../../test/support/assert.ts";
import { Code } from "../errors.ts";
import { fullDisk, ifTmpfs } from "../../test/support/full_disk.ts";
import { checkRecordOut, readLineKeyFile, writeRecordOut } from "./line_files.ts";

const dir = Deno.makeTempDirSync({ prefix: "linkd-line-files-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

let n = 0;
/** A key file of 32 bytes with exactly `mode`. */
function keyFile(mode: number): string {
  const p = `${dir}/k${++n}.key`;
  Deno.writeFileSync(p, new Uint8Array(32).fill(7));
  Deno.chmodSync(p, mode);
  return p;
}

test("readLineKeyFile() reads a key only its owner may read or write (0600, 0400)", () => {
  assert.is(readLineKeyFile(keyFile(0o600)).length, 32);
  assert.is(readLineKeyFile(keyFile(0o400)).length, 32);
  assert.is(readLineKeyFile(keyFile(0o700)).length, 32);
});

// As ssh refuses a private key "too open": a seed others could read is no longer the line's.
test("readLineKeyFile() refuses a key group or others may read or write, naming mode and fix", () => {
  for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666]) {
    const p = keyFile(mode);
    const msg = failsWith(() => readLineKeyFile(p), Code.BAD_LINE_KEY);
    const shown = mode.toString(8).padStart(4, "0");
    assert.is(
      msg,
      `Cannot use line key ${p}: its mode ${shown} lets group or others read or write it; run chmod 600 ${p}`,
    );
  }
});

test("readLineKeyFile() refuses a FIFO, a device, a folder, a big file; 66 when missing", async () => {
  const fifo = `${dir}/fifo.key`;
  assert.is((await new Deno.Command("mkfifo", { args: ["-m", "600", fifo] }).output()).code, 0);
  assert.match(failsWith(() => readLineKeyFile(fifo), Code.BAD_LINE_KEY), /a FIFO, not a regular/);
  assert.match(failsWith(() => readLineKeyFile("/dev/zero"), Code.BAD_LINE_KEY), /character dev/);
  assert.match(failsWith(() => readLineKeyFile(dir), Code.BAD_LINE_KEY), /a folder/);
  const big = `${dir}/big.key`;
  Deno.writeFileSync(big, new Uint8Array(4097), { mode: 0o600 });
  assert.match(failsWith(() => readLineKeyFile(big), Code.BAD_LINE_KEY), /more than 4096 bytes/);
  failsWith(() => readLineKeyFile(`${dir}/absent.key`), Code.LINE_KEY_MISSING);
});

test("checkRecordOut() refuses a path that exists (64) or whose folder is missing (66)", () => {
  const there = `${dir}/there.cbor`;
  Deno.writeTextFileSync(there, "another device's record");
  const msg = failsWith(() => checkRecordOut(there), Code.OUTPUT_EXISTS);
  assert.match(msg, /never overwritten; pass a new --record-out path$/);
  const dangling = `${dir}/dangling.cbor`;
  Deno.symlinkSync(`${dir}/nowhere.cbor`, dangling);
  failsWith(() => checkRecordOut(dangling), Code.OUTPUT_EXISTS);
  failsWith(() => checkRecordOut(`${dir}/no/such/r.cbor`), Code.IO);
  checkRecordOut(`${dir}/fresh.cbor`);
  assert.throws(() => Deno.lstatSync(`${dir}/fresh.cbor`), "a check creates nothing");
});

test("writeRecordOut() creates the record and never replaces a file", () => {
  const p = `${dir}/rec.cbor`;
  writeRecordOut(p, new Uint8Array([0xa0]));
  assert.equal(Deno.readFileSync(p), new Uint8Array([0xa0]));
  // Created between the check and the write (another station): refused, left as it was.
  failsWith(() => writeRecordOut(p, new Uint8Array([0xa1, 1, 2])), Code.OUTPUT_EXISTS);
  assert.equal(Deno.readFileSync(p), new Uint8Array([0xa0]));
});

ifTmpfs(test)("writeRecordOut() on a full disk: FILE_WRITE (66), no partial file", async () => {
  await fullDisk(async (mnt) => {
    const p = `${mnt}/rec.cbor`;
    const msg = failsWith(
      () => writeRecordOut(p, new Uint8Array(64 * 1024)),
      Code.FILE_WRITE,
    );
    assert.match(msg, /no space left on the device/);
    assert.equal([...Deno.readDirSync(mnt)], []);
    await Promise.resolve();
  }, 16);
});

test.run();
