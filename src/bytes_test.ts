/** bytes.ts: CRC-32 against zlib's known answers and its written-out table against the computed one; ByteBuilder. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ByteBuilder, crc32, CRC_TABLE, utf8 } from "./bytes.ts";

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

test("ByteBuilder holds pieces in one buffer that doubles: 65,536 one-byte pieces, one array", () => {
  const b = new ByteBuilder(1);
  const one = new Uint8Array([7]);
  for (let i = 0; i < 65_536; i++) b.append(one);
  const bytes = b.bytes();
  assert.is(b.length, 65_536);
  assert.is(bytes.length, 65_536);
  assert.is(bytes.buffer.byteLength, 65_536, "doubled exactly to the size, no piece kept");
  assert.ok(bytes.every((x) => x === 7));
  const c = new ByteBuilder(4);
  c.append(new Uint8Array([1, 2, 3]));
  c.append(new Uint8Array(0));
  c.append(new Uint8Array([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]));
  assert.equal([...c.bytes()], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  assert.is(c.bytes().buffer.byteLength, 16);
  assert.is(new ByteBuilder(0).bytes().length, 0);
});

test.run();
