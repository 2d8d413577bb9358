import { test } from "uvu";
import * as assert from "uvu/assert";
import { ocr } from "../../test/support/present.ts";
import { Bitmap } from "./bitmap.ts";
import {
  CAP_HEIGHT,
  CELL_HEIGHT,
  drawText,
  FONT_CHARS,
  glyph,
  GLYPH_WIDTH,
  hasDescender,
  hasGlyph,
  renderText,
  textHeight,
  textWidth,
} from "./font.ts";

const CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

test("the font covers capitals, digits, lower case and URL punctuation", () => {
  for (const c of CODE + "abcdefghijklmnopqrstuvwxyz-./:_?=&%~+#@") assert.ok(hasGlyph(c), c);
  assert.not.ok(hasGlyph("€"));
  assert.is(glyph("€").toString(), glyph("?").toString());
  assert.is(glyph(" ").count(), 0);
});

test("capitals and digits fill the 5×7 cap height and never use the descender row", () => {
  for (const c of CODE) {
    const g = glyph(c);
    assert.is(g.width, GLYPH_WIDTH);
    assert.is(g.height, CELL_HEIGHT);
    for (let y = 0; y < CAP_HEIGHT; y++) {
      assert.ok([0, 1, 2, 3, 4].some((x) => g.get(x, y)), `${c} row ${y}`);
    }
    assert.not.ok([0, 1, 2, 3, 4].some((x) => g.get(x, CAP_HEIGHT)), c);
  }
  assert.equal([...FONT_CHARS].filter((c) => hasDescender(c)).sort(), ["g", "j", "p", "q", "y"]);
});

test("every glyph's ink is one run of columns (the OCR's assumption)", () => {
  for (const c of FONT_CHARS) {
    const g = glyph(c);
    const cols = [0, 1, 2, 3, 4].map((x) =>
      [...Array(CELL_HEIGHT).keys()].some((y) => g.get(x, y))
    );
    const s = cols.map((v) => (v ? "#" : ".")).join("");
    assert.ok(/^\.*#*\.*$/.test(s), `${c}: ${s}`);
  }
});

test("0 and O, 1 and I and l, 5 and S, 8 and B differ", () => {
  for (
    const [a, b] of [["0", "O"], ["1", "I"], ["1", "l"], ["I", "l"], ["5", "S"], ["8", "B"], [
      "2",
      "Z",
    ]]
  ) {
    assert.is.not(glyph(a!).toString(), glyph(b!).toString(), `${a}/${b}`);
  }
});

test("metrics: 6 px advance, one blank column between glyphs, whole-number scaling", () => {
  assert.is(textWidth(""), 0);
  assert.is(textWidth("A"), 5);
  assert.is(textWidth("ABC"), 17);
  assert.is(textWidth("ABC", 3), 51);
  assert.is(textHeight("ABC", 2), 14);
  assert.is(textHeight("gap", 2), 16);
  const b = renderText("HI", 2);
  assert.is(b.width, 22);
  assert.is(b.height, 16);
  for (let y = 0; y < b.height; y++) {
    assert.not.ok(b.get(10, y) || b.get(11, y), "the gap column, doubled");
  }
  const at = new Bitmap(20, 10);
  drawText(at, 3, 1, "T");
  assert.ok(at.get(3, 1) && at.get(7, 1) && at.get(5, 7));
  assert.not.ok(at.get(2, 1) || at.get(8, 1));
});

test("every character reads back by template matching, at scales 1 to 4", () => {
  const all = FONT_CHARS.filter((c) => c !== " ").join("");
  for (let s = 1; s <= 4; s++) {
    const b = renderText(all, s);
    const lines = ocr(b, { x: 0, y: 0, width: b.width, height: b.height }, all);
    assert.is(lines.length, 1);
    // "-" and "_" trim to the same bar: the OCR cannot tell them apart out of context.
    assert.is(lines[0]!.text, all.replace(/[-_]/g, "?"), `scale ${s}`);
    assert.ok(lines[0]!.scales.every((x) => x === s || x === 0));
  }
  const code = renderText(CODE + "-", 3);
  assert.is(
    ocr(code, { x: 0, y: 0, width: code.width, height: code.height }, CODE + "-")[0]!.text,
    CODE + "-",
  );
});

test.run();
