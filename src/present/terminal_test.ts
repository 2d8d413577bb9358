import { test } from "uvu";
import * as assert from "uvu/assert";
import { rfcPairing } from "../../test/support/present.ts";
import { segmentFrames } from "./segment.ts";
import { bigText, segmentArt, segmentFrameArt, terminalText } from "./terminal.ts";

const RFC = rfcPairing();

test("big text: the font in # (ASCII) or half blocks", () => {
  assert.is(
    bigText("H1", true),
    [
      "#   #   #",
      "#   #  ##",
      "#   #   #",
      "#####   #",
      "#   #   #",
      "#   #   #",
      "#   #  ###",
    ].join("\n"),
  );
  assert.is(
    bigText("H1"),
    [
      "█   █  ▄█",
      "█▄▄▄█   █",
      "█   █   █",
      "▀   ▀  ▀▀▀",
    ].join("\n"),
  );
});

test("7-segment art: a digit in 3×3 characters", () => {
  assert.equal(segmentFrameArt([0x7F, 0x06, 0x40, 0], 7), [
    " _             ",
    "|_|   |  _     ",
    "|_|   |        ",
  ]);
});

test("14-segment art: diagonals and the split middle bar", () => {
  const m = segmentFrames("MK", { kind: 14, digits: 2 }).frames[0]!;
  assert.equal(segmentFrameArt(m, 14), [
    "               ",
    "|\\   /| |    / ",
    "| \\ / | |   /  ",
    "         --    ",
    "|     | |   \\  ",
    "|     | |    \\ ",
  ]);
  const b8 = segmentFrames("8", { kind: 14, digits: 1 }).frames[0]!;
  assert.equal(segmentFrameArt(b8, 14), [
    " _____ ",
    "|     |",
    "|     |",
    " ----- ",
    "|     |",
    "|_____|",
  ]);
});

test("segment art: every frame of a scrolling code, as many to a row as fit", () => {
  const art = segmentArt(segmentFrames("ABCDEF"), 7, 40);
  const lines = art.split("\n");
  assert.is(lines[0], "4-digit 7-segment display, 7 frames of 500 ms, looping:");
  assert.is(lines[1], "[ _       _     ]  [     _       _ ]");
  assert.is(lines.length, 1 + 4 * 3 + 3);
  assert.ok(lines.slice(1).every((l) => l.length <= 40));
  assert.match(segmentArt(segmentFrames("AB"), 7), /^4-digit 7-segment display:\n/);
});

test("the terminal view: instructions, big code, URL, expiry, segment frames", () => {
  const t = terminalText(RFC, {
    ascii: true,
    segment: { payload: segmentFrames(RFC.user_code), kind: 7 },
  });
  const lines = t.split("\n");
  assert.is(lines[0], "To link this device, open");
  assert.is(lines[1], "  http://127.0.0.1:54321/code");
  assert.ok(t.includes("  BCDF-GHJK   expires in 10 min, at 2026-11-24T12:10:00Z"));
  assert.ok(t.includes("or open http://127.0.0.1:54321/code?user_code=BCDF-GHJK"));
  assert.ok(t.includes(bigText("BCDF-GHJK", true).split("\n").map((l) => `  ${l}`).join("\n")));
  assert.ok(t.includes("4-digit 7-segment display, 10 frames of 500 ms, looping:"));
  assert.ok([...t].every((c) => c.charCodeAt(0) < 0x80), "ASCII only");
});

test("the terminal view with a QR code in half blocks, and odd expiries", () => {
  const t = terminalText({ ...RFC, expires_in: 59.6, expires_at: 0 }, { qr: true });
  assert.ok(t.includes("expires in 1 min\n") || t.includes("expires in 1 min"));
  const qrLines = t.split("\n").filter((l) => l.startsWith("██"));
  assert.ok(qrLines.length >= 10, "a QR block");
  assert.is(
    terminalText({ ...RFC, expires_in: 75, expires_at: 0 }).includes("expires in 1 min 15 s"),
    true,
  );
  assert.ok(terminalText({ ...RFC, expires_in: 20 }).includes("expires in 20 s, at "));
});

test.run();
