import { test } from "uvu";
import * as assert from "uvu/assert";
import { crc32 } from "../bytes.ts";
import { decodePng } from "../../test/support/present.ts";
import { Bitmap } from "./bitmap.ts";
import { encodePng } from "../../test/support/png.ts";

test("bitmap: row-major, MSB first, rows padded to whole bytes", () => {
  const b = new Bitmap(10, 2);
  assert.is(b.stride, 2);
  assert.is(b.data.length, 4);
  b.set(0, 0);
  b.set(9, 0);
  b.set(1, 1);
  assert.equal([...b.data], [0x80, 0x40, 0x40, 0x00]);
  assert.ok(b.get(9, 0));
  assert.not.ok(b.get(8, 0));
  b.set(0, 0, false);
  assert.is(b.data[0], 0);
  // Outside is blank to read and ignored to write.
  b.set(-1, 0);
  b.set(10, 1);
  assert.not.ok(b.get(-1, 0));
  assert.is(b.count(), 2);
});

test("bitmap: fill, blit at a scale, crop, fromRows/toString", () => {
  const src = Bitmap.fromRows(["#.", ".#"]);
  const b = new Bitmap(6, 6);
  b.blit(src, 1, 1, 2);
  assert.is(
    b.toString(),
    ["......", ".##...", ".##...", "...##.", "...##.", "......"].join("\n"),
  );
  assert.is(b.crop(3, 3, 3, 3).toString(), ["##.", "##.", "..."].join("\n"));
  const f = new Bitmap(4, 2);
  f.fillRect(1, 0, 10, 1);
  assert.is(f.toString(), ".###\n....");
  assert.is(src.scaled(1, 1).toString(), ["....", ".#..", "..#.", "...."].join("\n"));
  assert.throws(() => new Bitmap(2, 2, new Uint8Array(3)), RangeError);
  assert.throws(() => new Bitmap(-1, 2), RangeError);
  assert.throws(() => src.scaled(0), RangeError);
});

test("png: 1-bit greyscale, ink black, chunks with valid CRCs, round trip", () => {
  const b = Bitmap.fromRows(["#..#.....#", ".##......."]);
  const png = encodePng({ width: b.width, height: b.height, bitmap: b.data });
  assert.equal([...png.subarray(0, 8)], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
  const view = new DataView(png.buffer);
  assert.is(view.getUint32(8), 13);
  assert.is(String.fromCharCode(...png.subarray(12, 16)), "IHDR");
  assert.is(view.getUint32(16), 10);
  assert.is(view.getUint32(20), 2);
  assert.equal([...png.subarray(24, 29)], [1, 0, 0, 0, 0]);
  assert.is(view.getUint32(29), crc32(png, 12, 29));
  assert.is(String.fromCharCode(...png.subarray(png.length - 8, png.length - 4)), "IEND");
  assert.is(decodePng(png).toString(), b.toString());
});

test("png: scale and border", () => {
  const b = Bitmap.fromRows(["#.", ".#"]);
  const png = encodePng({ width: 2, height: 2, bitmap: b.data }, 3, 2);
  const back = decodePng(png);
  assert.is(back.width, 10);
  assert.is(back.height, 10);
  assert.is(back.toString(), b.scaled(3, 2).toString());
  assert.is(back.count(), 18);
  assert.equal(
    encodePng({ width: 2, height: 2, bitmap: b.data }),
    encodePng({ width: 2, height: 2, bitmap: b.scaled(1).data }),
  );
  assert.throws(() => encodePng({ width: 0, height: 0, bitmap: new Uint8Array(0) }), RangeError);
});

test.run();
