/** bytes.ts: CRC-32 against zlib's known answers and its written-out table against the computed one. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { crc32, CRC_TABLE, utf8 } from "./bytes.ts";

test("CRC_TABLE is the table of the reflected polynomial 0xedb88320", () => {
  assert.is(CRC_TABLE.length, 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    assert.is(CRC_TABLE[n], c >>> 0, `entry ${n}`);
  }
});

test("crc32() gives zlib's answers", () => {
  assert.is(crc32(utf8.encode("123456789")), 0xcbf43926); // the CRC-32 check value
  assert.is(crc32(new Uint8Array(0)), 0);
  assert.is(crc32(utf8.encode("The quick brown fox jumps over the lazy dog")), 0x414fa339);
  const b = utf8.encode("xx123456789yy");
  assert.is(crc32(b, 2, 11), 0xcbf43926, "a range");
  // seeded: the CRC of a whole equals the CRC of its second half seeded with the first's
  const whole = utf8.encode("hello, flash");
  assert.is(crc32(whole, 5, whole.length, crc32(whole, 0, 5)), crc32(whole));
});

test.run();
