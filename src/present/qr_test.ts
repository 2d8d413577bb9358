import { test } from "uvu";
import * as assert from "uvu/assert";
import { zbarDecode, zbarTestsRun } from "../../test/support/present.ts";
import { Bitmap } from "./bitmap.ts";
import { encodePng } from "../../test/support/png.ts";
import { byteCapacity, dataCodewords, encodeQr, type QrCode, versionFor } from "./qr.ts";

function png(qr: QrCode, scale = 3): Uint8Array {
  const b = new Bitmap(qr.size, qr.size);
  qr.modules.forEach((row, y) => row.forEach((d, x) => d && b.set(x, y)));
  return encodePng({ width: b.width, height: b.height, bitmap: b.data }, scale, 4 * scale);
}

/** `n` bytes of URL-ish text, different for each version. */
function text(n: number, seed: number): string {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789/:.-?=";
  let s = "";
  for (let i = 0; i < n; i++) s += abc[(i * 7 + seed * 13) % abc.length];
  return s;
}

test("capacities match the standard's table at known points", () => {
  assert.is(dataCodewords(1, "L"), 19);
  assert.is(dataCodewords(1, "M"), 16);
  assert.is(dataCodewords(2, "M"), 28);
  assert.is(dataCodewords(10, "M"), 216);
  assert.is(dataCodewords(40, "L"), 2956);
  assert.is(dataCodewords(40, "M"), 2334);
  assert.is(byteCapacity(1, "M"), 14);
  assert.is(byteCapacity(2, "M"), 26);
  assert.is(byteCapacity(40, "L"), 2953);
  assert.is(versionFor(26, "M"), 2);
  assert.is(versionFor(27, "M"), 3);
  assert.is(versionFor(2954, "L"), null);
});

test("the smallest version that holds the text; the matrix has the finder patterns", () => {
  const qr = encodeQr("https://amazon.com/us/code");
  assert.is(qr.version, 2);
  assert.is(qr.ecl, "M");
  assert.is(qr.size, 25);
  assert.is(qr.modules.length, 25);
  for (const [x0, y0] of [[0, 0], [18, 0], [0, 18]] as const) {
    for (let d = 0; d < 7; d++) {
      assert.ok(qr.modules[y0]![x0 + d], "finder top edge");
      assert.ok(qr.modules[y0 + 6]![x0 + d], "finder bottom edge");
      assert.ok(qr.modules[y0 + d]![x0], "finder left edge");
    }
    assert.ok(qr.modules[y0 + 3]![x0 + 3], "finder centre");
  }
  assert.ok(qr.modules[25 - 8]![8], "the dark module");
  assert.is(encodeQr("x".repeat(27)).version, 3);
  assert.throws(() => encodeQr("x".repeat(3000), "L"), RangeError);
});

test("the same text gives the same matrix", () => {
  assert.equal(encodeQr("http://127.0.0.1:54321/code"), encodeQr("http://127.0.0.1:54321/code"));
});

if (await zbarTestsRun()) {
  test("zbarimg reads every version 1–40 at levels L and M, each filled to capacity", async () => {
    const failures: string[] = [];
    for (const ecl of ["L", "M"] as const) {
      for (let v = 1; v <= 40; v++) {
        const t = text(byteCapacity(v, ecl), v);
        const qr = encodeQr(t, ecl);
        assert.is(qr.version, v);
        const got = await zbarDecode(png(qr, v > 20 ? 2 : 3));
        if (got !== t) failures.push(`${v}-${ecl}: ${JSON.stringify(got?.slice(0, 20))}`);
      }
    }
    assert.equal(failures, []);
  });

  test("zbarimg reads verification URIs, UTF-8 included", async () => {
    for (
      const uri of [
        "https://amazon.com/us/code",
        "https://www.amazon.co.uk/code",
        "http://127.0.0.1:54321/code?user_code=BCDF-GHJK",
        "https://example.com/device?user_code=WDJB-MJHT",
        "https://example.com/gerät/verknüpfen",
      ]
    ) {
      for (const ecl of ["L", "M"] as const) {
        assert.is(await zbarDecode(png(encodeQr(uri, ecl))), uri);
      }
    }
  });
} else {
  test.skip("zbarimg decoding (zbarimg not installed)");
}

test.run();
