import { test } from "uvu";
import * as assert from "uvu/assert";
import { segmentFrames } from "./segment.ts";
import { MAX_DIGITS, MIN_DIGITS } from "./geometry.ts";
import { FONT14, FONT7, SEG14, SEG7, segmentMask } from "./segment_font.ts";

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS = "0123456789";
const ALL = [...LETTERS, ...DIGITS];
const RFC8628 = "BCDFGHJKLMNPQRSTVWXZ";

function segs7(...names: (keyof typeof SEG7)[]): number {
  return names.reduce((m, n) => m | SEG7[n], 0);
}

function bits(n: number): number {
  let c = 0;
  for (; n; n >>>= 1) c += n & 1;
  return c;
}

/** Pairs x/y (x from a, y from b; each pair once when a = b) one segment apart. */
function oneApart(font: Readonly<Record<string, number>>, a: string, b: string): string[] {
  const out: string[] = [];
  [...a].forEach((x, i) =>
    [...b].forEach((y, j) => {
      if (a === b && j <= i) return;
      if (bits(font[x]! ^ font[y]!) === 1) out.push(`${x}/${y}`);
    })
  );
  return out;
}

test("7-segment digits have the common gfedcba masks", () => {
  assert.equal(
    [...DIGITS].map((d) => FONT7[d]),
    [0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F],
  );
  assert.is(FONT7["8"], segs7("a", "b", "c", "d", "e", "f", "g"));
  assert.is(FONT7["1"], segs7("b", "c"));
});

test("7-segment letters: plain shapes and the documented substitutions", () => {
  const expected: Record<string, number> = {
    A: 0x77,
    B: 0x7C,
    C: 0x39,
    D: 0x5E,
    E: 0x79,
    F: 0x71,
    G: 0x3D,
    H: 0x76,
    I: 0x30,
    J: 0x1E,
    K: 0x75,
    L: 0x38,
    M: 0x37,
    N: 0x54,
    O: 0x5C,
    P: 0x73,
    Q: 0x67,
    R: 0x50,
    S: 0x6D,
    T: 0x78,
    U: 0x3E,
    V: 0x1C,
    W: 0x7E,
    X: 0x36,
    Y: 0x6E,
    Z: 0x1B,
  };
  for (const l of LETTERS) assert.is(FONT7[l], expected[l], l);
  // The substitutions, segment by segment.
  assert.is(FONT7["K"], segs7("a", "c", "e", "f", "g"));
  assert.is(FONT7["M"], segs7("a", "b", "c", "e", "f"));
  assert.is(FONT7["V"], segs7("c", "d", "e"));
  assert.is(FONT7["W"], segs7("b", "c", "d", "e", "f", "g"));
  assert.is(FONT7["X"], segs7("b", "c", "e", "f"));
  assert.is(FONT7["Z"], segs7("a", "b", "d", "e"));
});

test("7 segments: every letter has its own mask; only S = 5 collides with a digit", () => {
  assert.is(new Set([...LETTERS].map((l) => FONT7[l])).size, 26);
  assert.is(new Set([...DIGITS].map((d) => FONT7[d])).size, 10);
  const clashes = [...LETTERS].flatMap((l) =>
    [...DIGITS].filter((d) => FONT7[d] === FONT7[l]).map((d) => `${l}=${d}`)
  );
  assert.equal(clashes, ["S=5"]);
});

test("7 segments: the one-segment look-alikes are the ones documented", () => {
  assert.is(
    oneApart(FONT7, LETTERS, LETTERS).join(" "),
    "A/H A/K A/M A/P A/Q B/O B/T B/W C/E C/G C/L D/J D/O D/W E/F E/T F/K F/P H/W H/X I/L J/U " +
      "J/V L/T M/X N/O N/R O/V U/W U/X W/Y",
  );
  assert.is(
    oneApart(FONT7, RFC8628, RFC8628).join(" "),
    "B/T B/W C/G C/L D/J D/W F/K F/P H/W H/X J/V L/T M/X N/R",
  );
  assert.is(
    oneApart(FONT7, LETTERS, DIGITS).join(" "),
    "A/8 B/6 E/6 G/0 G/6 H/4 K/6 M/0 Q/4 Q/9 S/6 S/9 U/0 W/8 Y/4 Y/9 Z/2",
  );
});

test("14 segments: all 36 characters are distinct, the one-segment look-alikes documented", () => {
  assert.is(new Set(ALL.map((c) => FONT14[c])).size, 36);
  assert.is(
    oneApart(FONT14, LETTERS, LETTERS).join(" "),
    "A/H A/P B/D C/E C/L E/F I/T J/U O/Q O/U P/R",
  );
  assert.is(oneApart(FONT14, LETTERS, DIGITS).join(" "), "A/8 G/6 H/4 S/6 S/9");
  for (const c of ALL) assert.ok(FONT14[c]! > 0 && FONT14[c]! < 1 << 14, c);
});

test("14-segment shapes: known masks", () => {
  const s = (...n: (keyof typeof SEG14)[]) => n.reduce((m, k) => m | SEG14[k], 0);
  assert.is(FONT14["0"], s("a", "b", "c", "d", "e", "f", "j", "k"));
  assert.is(FONT14["8"], s("a", "b", "c", "d", "e", "f", "g1", "g2"));
  assert.is(FONT14["X"], s("h", "j", "k", "m"));
  assert.is(FONT14["M"], s("b", "c", "e", "f", "h", "j"));
  assert.is(FONT14["K"], s("e", "f", "g1", "j", "m"));
  assert.is(FONT14["T"], s("a", "i", "l"));
  assert.is(FONT14["-"], s("g1", "g2"));
  assert.is(SEG14.m, 1 << 13);
});

test("the dash is the middle segment; case does not matter; unknown characters throw", () => {
  assert.is(segmentMask("-"), SEG7.g);
  assert.is(segmentMask("-", 14), SEG14.g1 | SEG14.g2);
  assert.is(segmentMask("k"), FONT7["K"]);
  assert.throws(() => segmentMask("€"), /no 7-segment shape/);
  assert.throws(() => segmentMask("?", 14), /no 14-segment shape/);
});

test("a short code is one frame, left-aligned and padded with blanks", () => {
  assert.equal(segmentFrames("AB3"), {
    digits: 4,
    kind: 7,
    frames: [[0x77, 0x7C, 0x4F, 0]],
    frame_ms: 500,
  });
  assert.equal(segmentFrames("BCDF").frames, [[0x7C, 0x39, 0x5E, 0x71]]);
  assert.equal(segmentFrames("BCDF", { digits: 6, frameMs: 800 }), {
    digits: 6,
    kind: 7,
    frames: [[0x7C, 0x39, 0x5E, 0x71, 0, 0]],
    frame_ms: 800,
  });
});

test("a long code scrolls one character a frame, with a blank gap, looping", () => {
  const p = segmentFrames("ABCDEF");
  const m = (s: string) => [...s].map((c) => (c === "_" ? 0 : FONT7[c]!));
  assert.is(p.frames.length, 7); // 6 characters + 1 blank
  assert.equal(p.frames, [
    m("ABCD"),
    m("BCDE"),
    m("CDEF"),
    m("DEF_"),
    m("EF_A"),
    m("F_AB"),
    m("_ABC"),
  ]);
  const wide = segmentFrames("ABCDEF", { gap: 4 });
  assert.is(wide.frames.length, 10);
  assert.equal(wide.frames[6], [0, 0, 0, 0]);
  assert.equal(wide.frames[7], m("___A"));
  assert.equal(wide.frames[9], m("_ABC"));
});

test("an RFC 8628 code scrolls with its dash as the middle segment", () => {
  const p = segmentFrames("BCDF-GHJK", { kind: 14, digits: 8 });
  assert.is(p.frames.length, 10);
  assert.equal(p.frames[0], [..."BCDF-GHJ"].map((c) => FONT14[c]!));
  assert.is(p.frames[0]![4], SEG14.g1 | SEG14.g2);
  assert.equal(p.frames[2], [..."DF-GHJK"].map((c) => FONT14[c]!).concat([0]));
  for (const f of p.frames) assert.is(f.length, 8);
  assert.is(p.kind, 14, "the payload says which font its masks are in");
});

test("digits follow present/geometry.ts: MIN_DIGITS to MAX_DIGITS, one frame entry each", () => {
  for (const digits of [MIN_DIGITS, 6, MAX_DIGITS]) {
    const p = segmentFrames("BCDF-GHJK", { digits });
    assert.is(p.digits, digits);
    for (const f of p.frames) assert.is(f.length, digits);
  }
  assert.throws(() => segmentFrames("ABC", { digits: MAX_DIGITS + 1 }), /from 1 to 32/);
});

test("bad options are refused", () => {
  assert.throws(() => segmentFrames("ABC", { digits: 0 }), RangeError);
  assert.throws(() => segmentFrames("ABC", { frameMs: 1.5 }), RangeError);
});

test.run();
