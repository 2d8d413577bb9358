/** text.ts: the one control-character rule, oneLine() and invalidArgument() every module uses. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ERR_INVALID_ARG_VALUE, hasControl, invalidArgument, oneLine } from "./text.ts";

test("hasControl() finds C0, DEL and C1, and nothing else", () => {
  for (const c of ["\u0000", "\n", "\u001f", "\u007f", "\u0085", "\u009f"]) {
    assert.ok(hasControl(`a${c}b`), JSON.stringify(c));
  }
  for (const c of [" ", "~", "\u00a0", "\u00ff", "\u2028", "é", "😀"]) {
    assert.not.ok(hasControl(`a${c}b`), JSON.stringify(c));
  }
});

test("oneLine() makes each run of breaks one space, trims and cuts with an ellipsis", () => {
  assert.is(oneLine("a\r\nb\tc\u0000d", 100), "a b c d");
  assert.is(oneLine("  a \n\n b\u2028c\u2029d\u0085e  "), "a b c d e");
  assert.is(oneLine("abcdef", 4), "abc…");
  assert.is(oneLine("abcd", 4), "abcd");
  assert.is(oneLine("x\u001b[2Jy\u007fz"), "x [2Jy z");
});

test('oneLine(s, max, "each") blanks each control character and line separator, nothing else', () => {
  assert.is(oneLine("/x\ny\r\u2028z  .json", Infinity, "each"), "/x y  z  .json");
  assert.is(oneLine(" a\tb\u001b[31m ", Infinity, "each"), " a b [31m ");
  assert.is(oneLine("a\u0085\u009fb", 3, "each"), "a …");
});

test("invalidArgument() is a TypeError with code ERR_INVALID_ARG_VALUE", () => {
  const e = invalidArgument("Invalid thing");
  assert.instance(e, TypeError);
  assert.is(e.message, "Invalid thing");
  assert.is(e.code, ERR_INVALID_ARG_VALUE);
  assert.is(ERR_INVALID_ARG_VALUE, "ERR_INVALID_ARG_VALUE");
});

test.run();
