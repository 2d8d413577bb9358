/**
 * The contract test suite of `FlashDriver`: the semantics listed in src/flash/driver.ts, checked
 * against any implementation on several geometries. Each driver's test file calls `flashContract`
 * once.
 */

import { suite } from "uvu";
import * as assert from "uvu/assert";
import { concat } from "../../src/bytes.ts";
import { type ErrorCode, isLinkdError, type LinkdError } from "../../src/errors.ts";
import { DEFAULT_GEOMETRY, type FlashDriver, type FlashGeometry } from "../../src/flash/driver.ts";

/** The geometries `flashContract` runs on unless told otherwise. */
export const CONTRACT_GEOMETRIES: readonly FlashGeometry[] = [
  DEFAULT_GEOMETRY,
  { size: 16384, eraseSize: 1024, pageSize: 64, writeSize: 1 },
];

/** Asserts that `fn` throws a LinkdError with `code`, and returns that error. */
export function throwsCode(fn: () => unknown, code: ErrorCode, what = "the call"): LinkdError {
  try {
    fn();
  } catch (e) {
    assert.ok(isLinkdError(e), `${what} threw ${String(e)}, not a LinkdError`);
    assert.is(e.code, code, `${what} threw ${e.code} (${e.message}), expected ${code}`);
    assert.not.match(e.message, /\n/, "error messages are one line");
    return e;
  }
  assert.unreachable(`${what} did not throw; expected ${code}`);
  throw new Error("unreachable");
}

/**
 * Registers and runs (via `.run()`) one uvu suite named `name` that checks `make(geometry)`
 * against the FlashDriver contract on each of `geometries`. Every test builds a fresh driver
 * on an erased part and closes it at the end.
 */
export function flashContract(
  name: string,
  make: (geometry: FlashGeometry) => FlashDriver & { close(): void },
  geometries: readonly FlashGeometry[] = CONTRACT_GEOMETRIES,
): void {
  const s = suite(name);
  for (const g of geometries) {
    const label = `${g.size}/${g.eraseSize}/${g.pageSize}/${g.writeSize}`;
    const it = (title: string, body: (f: FlashDriver, g: FlashGeometry) => void) => {
      s(`${label}: ${title}`, () => {
        const f = make(g);
        try {
          assert.equal(f.geometry, g, "driver reports the geometry it was made with");
          body(f, g);
        } finally {
          f.close();
        }
      });
    };

    it("read() of an erased part gives 0xFF everywhere", (f, g) => {
      const all = f.read(0, g.size);
      assert.is(all.length, g.size);
      assert.is(firstNot(all, 0xff), -1, "every byte reads 0xFF");
    });

    it("program() then read() gives the programmed bytes and leaves neighbours erased", (f, g) => {
      const at = g.pageSize + g.writeSize * 2;
      const data = pattern(g.writeSize * 4, 7);
      f.program(at, data);
      assert.equal(f.read(at, data.length), data);
      assert.equal(f.read(at - g.writeSize, g.writeSize), ff(g.writeSize), "bytes before");
      assert.equal(f.read(at + data.length, g.writeSize), ff(g.writeSize), "bytes after");
    });

    it("program() fills a whole page in one call", (f, g) => {
      const data = pattern(g.pageSize, 3);
      f.program(g.pageSize * 2, data);
      assert.equal(f.read(g.pageSize * 2, g.pageSize), data);
      assert.equal(f.read(g.pageSize, g.pageSize), ff(g.pageSize), "previous page");
      assert.equal(f.read(g.pageSize * 3, g.pageSize), ff(g.pageSize), "next page");
    });

    it("program() only clears bits: 0xFF bytes it wrote stay programmable", (f, g) => {
      const w = g.writeSize;
      const first = new Uint8Array(w * 2).fill(0xff);
      first.fill(0x5a, 0, w);
      f.program(0, first);
      assert.equal(f.read(0, w * 2), first);
      const second = new Uint8Array(w).fill(0xa5);
      f.program(w, second);
      assert.equal(f.read(0, w), new Uint8Array(w).fill(0x5a));
      assert.equal(f.read(w, w), second);
    });

    it("program() onto an unerased byte throws FLASH_NOT_ERASED and changes nothing", (f, g) => {
      const w = g.writeSize;
      const at = g.eraseSize + w * 4;
      f.program(at, new Uint8Array(w).fill(0xf0));
      const before = f.read(0, g.size);
      // The same value again, a value with fewer bits, and a range that starts on erased bytes.
      throwsCode(() => f.program(at, new Uint8Array(w).fill(0xf0)), "FLASH_NOT_ERASED", "same");
      throwsCode(() => f.program(at, new Uint8Array(w).fill(0x00)), "FLASH_NOT_ERASED", "zeros");
      throwsCode(
        () => f.program(at - w, new Uint8Array(w * 2).fill(0x0f)),
        "FLASH_NOT_ERASED",
        "range ending on the programmed word",
      );
      assert.equal(f.read(0, g.size), before, "nothing written");
    });

    it("program() refuses misaligned, empty and page-crossing ranges with FLASH_ALIGN", (f, g) => {
      const w = g.writeSize;
      const p = g.pageSize;
      throwsCode(() => f.program(p, new Uint8Array(0)), "FLASH_ALIGN", "empty");
      throwsCode(() => f.program(p - w, new Uint8Array(w * 2)), "FLASH_ALIGN", "crossing");
      throwsCode(() => f.program(0, new Uint8Array(p + w)), "FLASH_ALIGN", "longer than a page");
      throwsCode(
        () => f.program(g.eraseSize - w, new Uint8Array(w * 2)),
        "FLASH_ALIGN",
        "crossing a sector boundary",
      );
      if (w > 1) {
        throwsCode(() => f.program(p + 1, new Uint8Array(w)), "FLASH_ALIGN", "offset");
        throwsCode(() => f.program(p, new Uint8Array(w + 1)), "FLASH_ALIGN", "length");
        throwsCode(() => f.program(p, new Uint8Array(w - 1)), "FLASH_ALIGN", "short length");
      }
      assert.is(firstNot(f.read(0, g.size), 0xff), -1, "nothing written");
    });

    it("read(), program() and erase() out of range throw FLASH_RANGE", (f, g) => {
      const w = g.writeSize;
      const sectors = g.size / g.eraseSize;
      throwsCode(() => f.read(g.size, 1), "FLASH_RANGE", "read at the end");
      throwsCode(() => f.read(g.size - 1, 2), "FLASH_RANGE", "read over the end");
      throwsCode(() => f.read(-1, 1), "FLASH_RANGE", "read at -1");
      throwsCode(() => f.read(0, g.size + 1), "FLASH_RANGE", "read longer than the part");
      throwsCode(() => f.program(g.size, new Uint8Array(w)), "FLASH_RANGE", "program at end");
      throwsCode(() => f.program(-w, new Uint8Array(w)), "FLASH_RANGE", "program at -w");
      throwsCode(() => f.erase(sectors), "FLASH_RANGE", "erase past the last sector");
      throwsCode(() => f.erase(-1), "FLASH_RANGE", "erase -1");
      throwsCode(() => f.erase(1.5), "FLASH_RANGE", "erase 1.5");
      assert.equal(f.read(g.size - 1, 1), new Uint8Array([0xff]), "last byte still readable");
      assert.is(firstNot(f.read(0, g.size), 0xff), -1, "nothing written");
    });

    it("erase() restores 0xFF in exactly one sector", (f, g) => {
      const e = g.eraseSize;
      const w = g.writeSize;
      const word = new Uint8Array(w).fill(0x00);
      for (const s of [0, 1, 2]) {
        f.program(s * e, word);
        f.program(s * e + e - w, word);
      }
      f.program(e + g.pageSize, pattern(g.pageSize, 11));
      f.erase(1);
      assert.is(firstNot(f.read(e, e), 0xff), -1, "sector 1 erased");
      for (const s of [0, 2]) {
        assert.equal(f.read(s * e, w), word, `start of sector ${s}`);
        assert.equal(f.read(s * e + e - w, w), word, `end of sector ${s}`);
        assert.is(firstNot(f.read(s * e + w, e - 2 * w), 0xff), -1, `middle of sector ${s}`);
      }
      f.program(e, word);
      assert.equal(f.read(e, w), word, "the erased sector can be programmed again");
    });

    it("erase() of the last sector leaves the one before it", (f, g) => {
      const e = g.eraseSize;
      const last = g.size / e - 1;
      const data = pattern(g.pageSize, 5);
      f.program(last * e - g.pageSize, data);
      f.program(last * e, data);
      f.erase(last);
      assert.is(firstNot(f.read(last * e, e), 0xff), -1);
      assert.equal(f.read(last * e - g.pageSize, g.pageSize), data);
    });

    it("read() crosses page and sector boundaries", (f, g) => {
      const w = g.writeSize;
      const a = pattern(w, 1);
      const b = pattern(w, 2);
      f.program(g.pageSize - w, a);
      f.program(g.pageSize, b);
      assert.equal(f.read(g.pageSize - w, 2 * w), concat(a, b), "page boundary");
      f.program(g.eraseSize - w, b);
      f.program(g.eraseSize, a);
      assert.equal(f.read(g.eraseSize - w, 2 * w), concat(b, a), "sector boundary");
      const span = f.read(g.eraseSize - g.pageSize, g.eraseSize);
      assert.equal(span.subarray(g.pageSize - w, g.pageSize + w), concat(b, a), "long read");
    });

    it("read() returns a copy and program() does not keep the caller's array", (f, g) => {
      const data = pattern(g.pageSize, 9);
      const copy = data.slice();
      f.program(0, data);
      data.fill(0);
      const got = f.read(0, g.pageSize);
      got.fill(0);
      assert.equal(f.read(0, g.pageSize), copy);
    });

    it("sync() keeps everything programmed and erased before it", (f, g) => {
      const e = g.eraseSize;
      const data = pattern(g.pageSize, 13);
      f.program(0, data);
      f.program(e, data);
      f.program(2 * e + g.pageSize, data);
      f.erase(1);
      f.sync();
      assert.equal(f.read(0, g.pageSize), data);
      assert.is(firstNot(f.read(e, e), 0xff), -1);
      assert.equal(f.read(2 * e + g.pageSize, g.pageSize), data);
      f.sync();
      assert.equal(f.read(2 * e + g.pageSize, g.pageSize), data, "a second sync changes nothing");
    });
  }
  s.run();
}

/** `n` bytes that are never 0xFF and differ from byte to byte. */
function pattern(n: number, salt: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + salt * 17 + 1) % 255;
  return out;
}

function ff(n: number): Uint8Array {
  return new Uint8Array(n).fill(0xff);
}

/** Index of the first byte that is not `v`, or -1. */
function firstNot(b: Uint8Array, v: number): number {
  for (let i = 0; i < b.length; i++) if (b[i] !== v) return i;
  return -1;
}
