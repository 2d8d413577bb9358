import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  decodePng,
  lwaPairing,
  ocr,
  rfcPairing,
  zbarDecode,
  zbarTestsRun,
} from "../../test/support/present.ts";
import { Bitmap } from "./bitmap.ts";
import { encodePng } from "../../test/support/png.ts";
import { type Box, type ScreenFrame, screenFrame, shortUrl, wrapUrl } from "./screen.ts";
import { DEFAULT_SCREEN, MAX_SCREEN_SIDE, MIN_SCREENS, screenProblem } from "./geometry.ts";

const LWA = lwaPairing({ user_code: "BKTMXQ" });

const RFC = rfcPairing({ expires_at: Date.UTC(2026, 10, 24, 12, 30), expires_in: 1800 });

const GOLDEN = new URL("./testdata/pairing_128x64.png", import.meta.url);
/** The same frame ×4 with a white border, for a person to look at (checked by eye). */
const GOLDEN_VIEW = new URL("./testdata/pairing_128x64_x4.png", import.meta.url);
const UPDATE = Deno.env.get("LINKD_UPDATE_GOLDEN") === "1";

const CODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
const URL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789./:";

function bitmapOf(f: ScreenFrame): Bitmap {
  return new Bitmap(f.width, f.height, f.bitmap);
}

function grow(b: Box, by: number): Box {
  return { x: b.x - by, y: b.y - by, width: b.width + 2 * by, height: b.height + 2 * by };
}

/** The code read back from a frame: the code box (grown by 2 px) through the OCR. */
function readCode(img: Bitmap, f: ScreenFrame): { lines: string[]; scales: Set<number> } {
  const lines = ocr(img, grow(f.layout.code, 2), CODE_CHARS);
  return { lines: lines.map((l) => l.text), scales: new Set(lines.flatMap((l) => l.scales)) };
}

/** No two parts of the layout overlap, and all lie on the screen. */
function assertLayoutSane(f: ScreenFrame): void {
  const boxes = [f.layout.qr, f.layout.code, f.layout.url].filter((b): b is NonNullable<typeof b> =>
    b !== null
  );
  for (const b of boxes) {
    assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.width <= f.width && b.y + b.height <= f.height);
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!, b = boxes[j]!;
      const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y ||
        b.y + b.height <= a.y;
      assert.ok(apart, `boxes ${i} and ${j} overlap`);
    }
  }
}

test("golden frame: 128×64 re-renders byte for byte", async () => {
  const f = screenFrame(LWA);
  const png = encodePng(f);
  const view = encodePng(f, 4, 8);
  if (UPDATE) {
    await Deno.writeFile(GOLDEN, png);
    await Deno.writeFile(GOLDEN_VIEW, view);
  }
  const golden = await Deno.readFile(GOLDEN);
  const fromGolden = decodePng(golden);
  let differing = 0;
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 128; x++) differing += +(fromGolden.get(x, y) !== bitmapOf(f).get(x, y));
  }
  assert.is(differing, 0, "pixels that differ from the golden frame");
  assert.equal(png, golden);
  assert.equal(view, await Deno.readFile(GOLDEN_VIEW));
  assert.equal(decodePng(view).toString(), bitmapOf(f).scaled(4, 8).toString());
});

test("golden frame: the layout is QR left (2 px modules), code right at scale 3, URL below", () => {
  const f = screenFrame(LWA);
  assert.is(f.width, 128);
  assert.is(f.height, 64);
  assert.is(f.bitmap.length, 128 * 64 / 8);
  assert.equal(f.notes, []);
  assert.equal(f.layout.qr, {
    x: 0,
    y: 1,
    width: 62,
    height: 62,
    module: 2,
    quiet: 3,
    version: 2,
    ecl: "M",
    text: "https://amazon.com/us/code",
  });
  assert.equal(f.layout.code.lines, ["BKT", "MXQ"]);
  assert.is(f.layout.code.scale, 3);
  assert.equal(f.layout.url?.lines, ["amazon.com", "/us/code"]);
  assertLayoutSane(f);
});

test("golden frame: the code reads back by template matching over the font", async () => {
  const img = decodePng(await Deno.readFile(GOLDEN));
  const f = screenFrame(LWA); // for the boxes only; the pixels come from the golden file
  const { lines, scales } = readCode(img, f);
  assert.is(lines.join(""), LWA.user_code);
  assert.equal([...scales], [3]);
  // The URL text too, in the small type.
  const url = ocr(img, grow(f.layout.url!, 1), URL_CHARS);
  assert.is(url.map((l) => l.text).join(""), shortUrl(LWA.verification_uri));
  assert.equal([...new Set(url.flatMap((l) => l.scales))], [1]);
  // Everything right of the QR code is text: nothing there the OCR does not know.
  const qr = f.layout.qr!;
  const right = ocr(
    img,
    { x: qr.x + qr.width, y: 0, width: 128 - qr.width, height: 64 },
    CODE_CHARS + URL_CHARS,
  );
  assert.equal(right.map((l) => l.text), ["BKT", "MXQ", "amazon.com", "/us/code"]);
});

test("OCR is a real check: a damaged glyph does not read", async () => {
  const img = decodePng(await Deno.readFile(GOLDEN));
  const f = screenFrame(LWA);
  const c = f.layout.code;
  img.fillRect(c.x + 3, c.y + 9, 3, 3, !img.get(c.x + 3, c.y + 9)); // one pixel of B at scale 3
  assert.is(readCode(img, f).lines.join(""), "?KTMXQ");
});

test("screen sizes: 296×128 and 200×200 grow the QR and the code; 64×48 drops the URL", () => {
  const big = screenFrame(LWA, { width: 296, height: 128 });
  assert.equal(big.notes, []);
  assert.is(big.layout.qr?.module, 4);
  assert.is(big.layout.code.scale, 7);
  assert.equal(big.layout.url?.lines, ["amazon.com/us/code"]);
  assertLayoutSane(big);
  const square = screenFrame(LWA, { width: 200, height: 200 });
  assert.is(square.layout.qr!.y, 0, "QR on top");
  assert.ok(square.layout.code.y >= square.layout.qr!.height);
  assertLayoutSane(square);
  const small = screenFrame(LWA, { width: 64, height: 48 });
  assert.is(small.layout.qr?.module, 1);
  assert.is(small.layout.code.scale, 2);
  assert.is(small.layout.url, null);
  assert.equal(small.notes, ["url: left out, no room for the URL text"]);
  assertLayoutSane(small);
  assert.is(small.bitmap.length, 8 * 48);
});

test("degrading: no room for the QR beside large type, or none at all, is said in notes", () => {
  const f = screenFrame(RFC, { width: 64, height: 48 });
  assert.is(f.layout.qr, null);
  assert.is(f.layout.code.scale, 2);
  assert.equal(f.notes, [
    "qr: left out, the code would not fit in large type beside it",
    "url: left out, no room for the URL text",
  ]);
  assert.equal(readCode(bitmapOf(f), f).lines, ["BCDF", "GHJK"]);
  const flat = screenFrame(RFC, { width: 128, height: 32 });
  assert.is(flat.layout.qr, null);
  assert.equal(flat.notes, [
    "qr: left out, version 3 needs 33x33 px (1 px modules, 2-module quiet zone) and the screen is 128x32",
  ]);
  assert.equal(readCode(bitmapOf(flat), flat).lines, ["BCDF-GHJK"]);
  const tiny = screenFrame(LWA, { width: 40, height: 20 });
  assert.ok(tiny.notes.includes("code: small type, no room for large type"));
  assert.equal(readCode(bitmapOf(tiny), tiny).lines, ["BKTMXQ"]);
  assert.throws(() => screenFrame(LWA, { width: 16, height: 8 }), /too small for the code/);
  assert.throws(() => screenFrame(LWA, { width: 0 }), RangeError);
  assert.throws(() => screenFrame(LWA, { height: 64.5 }), RangeError);
  const long = screenFrame({ ...LWA, verification_uri: `https://example.com/${"x".repeat(3000)}` });
  assert.equal(long.notes[0], "qr: left out, the URI is too long for a QR code");
});

test("MIN_SCREENS (geometry.ts, what config allows): the code and a QR code from there up", () => {
  const pairings = [LWA, RFC, lwaPairing({ user_code: "ABCDEFGH" })];
  const qrLost = (width: number, height: number) =>
    pairings.filter((p) => {
      const f = screenFrame(p, { width, height });
      assertLayoutSane(f);
      assert.is(f.bitmap.length, Math.ceil(width / 8) * height);
      return f.layout.qr === null;
    }).length;
  const corners = MIN_SCREENS.map((m) => [m.width, m.height]);
  assert.equal(corners, [[33, 64], [80, 33]]);
  const allowed = [...corners, [33, 128], [79, 64], [80, 63], [200, 33], [96, 48], [128, 64]];
  for (const [w, h] of allowed) {
    assert.is(screenProblem(w!, h!), null, `${w}x${h} allowed`);
    assert.is(qrLost(w!, h!), 0, `${w}x${h} shows a QR code for every pairing`);
  }
  // One pixel less than a corner, and the RFC 8628 code's QR is lost: the bounds are tight.
  for (const [w, h] of [[32, 64], [80, 32], [79, 48], [48, 63]]) {
    assert.type(screenProblem(w!, h!), "string", `${w}x${h} refused`);
    assert.ok(qrLost(w!, h!) > 0, `${w}x${h} loses a QR code`);
  }
  assert.is(screenProblem(DEFAULT_SCREEN.width, DEFAULT_SCREEN.height), null);
  assert.is(screenFrame(LWA).width, DEFAULT_SCREEN.width);
  assert.match(screenProblem(1025, 64)!, /^width must be a whole number from 1 to 1024/);
  assert.throws(() => screenFrame(LWA, { width: MAX_SCREEN_SIDE + 1 }), RangeError);
});

test("an odd width keeps rows padded to whole bytes", () => {
  const f = screenFrame(LWA, { width: 131, height: 64 });
  assert.is(f.bitmap.length, 17 * 64);
  assert.equal(readCode(bitmapOf(f), f).lines.join(""), "BKTMXQ");
});

test("short URL and its wrapping", () => {
  assert.is(shortUrl("https://www.amazon.com/us/code/"), "amazon.com/us/code");
  assert.is(shortUrl("http://127.0.0.1:54321/code"), "127.0.0.1:54321/code");
  assert.is(shortUrl("https://Example.COM/Device?x=1"), "example.com/Device?x=1");
  assert.is(shortUrl("not a url/code"), "not a url/code");
  assert.equal(wrapUrl("amazon.com/us/code", 10), ["amazon.com", "/us/code"]);
  assert.equal(wrapUrl("127.0.0.1:54321/code", 14), ["127.0.0.1:", "54321/code"]);
  assert.equal(wrapUrl("abcdefghij", 4), ["abcd", "efgh", "ij"]);
  assert.equal(wrapUrl("amazon.com/us/code", 40), ["amazon.com/us/code"]);
  assert.equal(wrapUrl("x", 0), []);
});

if (await zbarTestsRun()) {
  test("zbarimg reads the golden frame's QR: the verification URI", async () => {
    const img = decodePng(await Deno.readFile(GOLDEN));
    const png = encodePng({ width: img.width, height: img.height, bitmap: img.data }, 4, 16);
    assert.is(await zbarDecode(png), LWA.verification_uri);
  });

  test("zbarimg reads an RFC 8628 frame's QR: the complete URI; its code reads back", async () => {
    const f = screenFrame(RFC);
    assert.equal(f.notes, []);
    assert.is(f.layout.qr?.text, RFC.verification_uri_complete);
    assert.is(await zbarDecode(encodePng(f, 4, 16)), RFC.verification_uri_complete);
    const { lines, scales } = readCode(bitmapOf(f), f);
    assert.equal(lines, ["BCDF", "GHJK"]);
    assert.is(lines.join("-"), RFC.user_code);
    assert.equal([...scales], [3]);
    assertLayoutSane(f);
  });

  test("zbarimg reads the QR at every screen size that has one", async () => {
    for (const p of [LWA, RFC]) {
      for (const [width, height] of [[128, 64], [296, 128], [64, 48], [200, 200], [128, 32]]) {
        const f = screenFrame(p, { width: width!, height: height! });
        if (!f.layout.qr) continue;
        const got = await zbarDecode(encodePng(f, 4, 16));
        assert.is(got, p.verification_uri_complete ?? p.verification_uri, `${width}x${height}`);
      }
    }
  });
} else {
  test.skip("zbarimg decoding (zbarimg not installed)");
}

test.run();
