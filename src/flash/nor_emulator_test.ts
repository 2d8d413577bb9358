import { test } from "uvu";
import * as assert from "uvu/assert";
import { equal } from "../bytes.ts";
import { flashContract, throwsCode } from "../../test/support/flash_contract.ts";
import { DEFAULT_GEOMETRY, type FlashGeometry } from "./driver.ts";
import { NorEmulator } from "./nor_emulator.ts";

const tmp = Deno.makeTempDirSync({ prefix: "linkd-nor-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
let fileNo = 0;
const tmpPath = () => `${tmp}/flash-${fileNo++}.bin`;

flashContract("NorEmulator.memory", (g) => NorEmulator.memory(g));
flashContract("NorEmulator.openFile", (g) => {
  const path = tmpPath();
  const f = NorEmulator.openFile(path, g);
  return {
    geometry: f.geometry,
    read: (o, n) => f.read(o, n),
    program: (o, d) => f.program(o, d),
    erase: (s) => f.erase(s),
    sync: () => {
      f.sync();
      // What was synced is what the file holds.
      assert.ok(equal(Deno.readFileSync(path), f.image()), "file matches the image after sync");
    },
    close: () => {
      f.close();
      Deno.removeSync(path);
    },
  };
});

const G = DEFAULT_GEOMETRY;
const SMALL: FlashGeometry = { size: 16384, eraseSize: 1024, pageSize: 64, writeSize: 1 };

/** `n` bytes that are never 0xFF. */
function pattern(n: number, salt = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + salt * 13 + 1) % 255;
  return out;
}

function allFF(b: Uint8Array): boolean {
  return b.every((x) => x === 0xff);
}

/** A part with every page programmed with a pattern, so torn erases are visible. */
function fullPart(seed: number, geometry: FlashGeometry = G): NorEmulator {
  const f = NorEmulator.memory(geometry, { seed });
  for (let o = 0; o < geometry.size; o += geometry.pageSize) {
    f.program(o, pattern(geometry.pageSize, o / geometry.pageSize));
  }
  return f;
}

// ── construction ──────────────────────────────────────────────────────────────────────────────

test("memory() fills in the default geometry and starts erased", () => {
  const f = NorEmulator.memory({ size: 1 << 17 });
  assert.equal(f.geometry, { ...G, size: 1 << 17 });
  assert.ok(allFF(f.read(0, 1 << 17)));
  assert.equal(f.eraseCounts(), new Array(32).fill(0));
});

test("memory() and fromImage() refuse invalid geometry with FLASH_GEOMETRY", () => {
  throwsCode(() => NorEmulator.memory({ size: 1000 }), "FLASH_GEOMETRY", "size");
  throwsCode(() => NorEmulator.memory({ pageSize: 100 }), "FLASH_GEOMETRY", "page");
  throwsCode(() => NorEmulator.memory({ size: 8192 }), "FLASH_GEOMETRY", "two sectors");
  const e = throwsCode(
    () => NorEmulator.fromImage(new Uint8Array(4096), G),
    "FLASH_GEOMETRY",
    "short image",
  );
  assert.match(e.message, "4096");
  assert.match(e.message, "65536");
});

test("memory() refuses a nonsense endurance", () => {
  assert.throws(() => NorEmulator.memory({}, { endurance: 0 }), RangeError);
  assert.throws(() => NorEmulator.memory({}, { endurance: 1.5 }), RangeError);
});

test("fromImage() copies the image, and image() returns a copy", () => {
  const src = new Uint8Array(G.size).fill(0xff);
  src.set(pattern(16), 100);
  const f = NorEmulator.fromImage(src, G);
  src.fill(0);
  assert.equal(f.read(100, 16), pattern(16));
  const img = f.image();
  img.fill(0);
  assert.equal(f.read(100, 16), pattern(16));
  assert.ok(allFF(f.read(0, 100)));
});

test("openFile() creates a missing file erased with exactly size bytes", () => {
  const path = tmpPath();
  const f = NorEmulator.openFile(path, SMALL);
  f.close();
  const bytes = Deno.readFileSync(path);
  assert.is(bytes.length, SMALL.size);
  assert.ok(allFF(bytes));
});

test("openFile() refuses a file of the wrong size with FLASH_GEOMETRY naming both sizes", () => {
  const path = tmpPath();
  Deno.writeFileSync(path, new Uint8Array(1000).fill(0xff));
  const e = throwsCode(() => NorEmulator.openFile(path, G), "FLASH_GEOMETRY");
  assert.match(e.message, "1000");
  assert.match(e.message, "65536");
  assert.is(Deno.statSync(path).size, 1000, "file left alone");
  Deno.writeFileSync(path, new Uint8Array(0));
  throwsCode(() => NorEmulator.openFile(path, G), "FLASH_GEOMETRY", "an empty file");
});

test("openFile() refuses a missing folder with FLASH_MISSING", () => {
  const e = throwsCode(
    () => NorEmulator.openFile(`${tmp}/no-such-folder/flash.bin`, G),
    "FLASH_MISSING",
  );
  assert.match(e.message, "no-such-folder");
});

test("openFile() refuses a folder with FLASH_IO and bad geometry with FLASH_GEOMETRY", () => {
  throwsCode(() => NorEmulator.openFile(tmp, G), "FLASH_IO", "a folder");
  throwsCode(
    () => NorEmulator.openFile(tmpPath(), { ...G, writeSize: 3 }),
    "FLASH_GEOMETRY",
    "writeSize 3",
  );
});

test("openFile() keeps contents across close and reopen", () => {
  const path = tmpPath();
  const a = NorEmulator.openFile(path, G);
  a.program(0x1000, pattern(256, 1));
  a.program(0x2000, pattern(256, 2));
  a.program(0x3010, pattern(16, 3));
  a.erase(2);
  a.sync();
  const expected = a.image();
  a.close();
  assert.ok(equal(Deno.readFileSync(path), expected), "file holds the image");
  const b = NorEmulator.openFile(path, G);
  assert.equal(b.read(0, G.size), expected);
  assert.equal(b.read(0x1000, 256), pattern(256, 1));
  assert.ok(allFF(b.read(0x2000, 0x1000)));
  assert.equal(b.read(0x3010, 16), pattern(16, 3));
  b.program(0x2000, pattern(8, 4));
  b.close();
  const c = NorEmulator.openFile(path, G);
  assert.equal(c.read(0x2000, 8), pattern(8, 4));
  c.close();
});

test("close() makes later calls throw FLASH_IO but image() still works", () => {
  const f = NorEmulator.memory();
  f.program(0, pattern(4));
  f.close();
  f.close();
  throwsCode(() => f.read(0, 4), "FLASH_IO", "read");
  throwsCode(() => f.program(4, pattern(4)), "FLASH_IO", "program");
  throwsCode(() => f.erase(0), "FLASH_IO", "erase");
  throwsCode(() => f.sync(), "FLASH_IO", "sync");
  assert.equal(f.image().subarray(0, 4), pattern(4));
});

// ── rules and statistics ──────────────────────────────────────────────────────────────────────

test("program() error messages name sizes and offsets in one line", () => {
  const f = NorEmulator.memory();
  const e = throwsCode(() => f.program(0x1f80, new Uint8Array(256)), "FLASH_ALIGN");
  assert.is(e.message, "Cannot program 256 bytes at 0x1f80: crosses the page boundary at 0x2000");
  f.program(0x100, new Uint8Array([0x12, 0x34, 0x56, 0x78]));
  const n = throwsCode(
    () => f.program(0x100, new Uint8Array([0x12, 0x34, 0x56, 0x78])),
    "FLASH_NOT_ERASED",
  );
  assert.is(n.message, "Cannot program 4 bytes at 0x100: the byte at 0x100 is not erased");
  const r = throwsCode(() => f.erase(16), "FLASH_RANGE");
  assert.is(r.message, "Cannot erase sector 16: the flash has 16 sectors (0 to 15)");
});

test("stats count completed programs, erases and bytes; refused calls do not count", () => {
  const f = NorEmulator.memory();
  f.program(0, pattern(256));
  f.program(256, pattern(8));
  f.erase(3);
  f.read(0, 100);
  f.read(50, 10);
  throwsCode(() => f.program(0, pattern(4)), "FLASH_NOT_ERASED");
  throwsCode(() => f.program(2, pattern(4)), "FLASH_ALIGN");
  throwsCode(() => f.read(G.size, 1), "FLASH_RANGE");
  assert.equal(f.stats, { ops: 3, programs: 2, erases: 1, bytesProgrammed: 264, bytesRead: 110 });
});

test("eraseCount() and eraseCounts() count erases per sector", () => {
  const f = NorEmulator.memory();
  f.erase(1);
  f.erase(1);
  f.erase(2);
  f.erase(15);
  assert.is(f.eraseCount(1), 2);
  assert.is(f.eraseCount(2), 1);
  assert.is(f.eraseCount(0), 0);
  const counts = new Array(16).fill(0);
  counts[1] = 2;
  counts[2] = 1;
  counts[15] = 1;
  assert.equal(f.eraseCounts(), counts);
  throwsCode(() => f.eraseCount(16), "FLASH_RANGE");
});

test("a sector erased `endurance` times is worn out: erase and program throw FLASH_WORN_OUT", () => {
  const f = NorEmulator.memory(SMALL, { endurance: 3 });
  f.program(2 * 1024 + 5, pattern(7));
  f.erase(2);
  f.erase(2);
  f.program(2 * 1024, pattern(64, 1));
  f.erase(2);
  assert.is(f.eraseCount(2), 3);
  const e = throwsCode(() => f.erase(2), "FLASH_WORN_OUT", "fourth erase");
  assert.match(e.message, "sector 2");
  throwsCode(() => f.program(2 * 1024, pattern(8)), "FLASH_WORN_OUT", "program");
  assert.is(f.eraseCount(2), 3, "a refused erase is not counted");
  assert.ok(allFF(f.read(2 * 1024, 1024)), "the sector reads as its last erase left it");
  f.erase(3);
  f.program(3 * 1024, pattern(8));
  assert.equal(f.read(3 * 1024, 8), pattern(8), "other sectors still work");
});

// ── power loss ────────────────────────────────────────────────────────────────────────────────

function assertDead(f: NorEmulator): void {
  assert.ok(f.powerLost, "powerLost");
  throwsCode(() => f.read(0, 1), "FLASH_POWER_LOSS", "read after the cut");
  throwsCode(() => f.program(0x8000, pattern(4)), "FLASH_POWER_LOSS", "program after the cut");
  throwsCode(() => f.erase(9), "FLASH_POWER_LOSS", "erase after the cut");
  throwsCode(() => f.sync(), "FLASH_POWER_LOSS", "sync after the cut");
  throwsCode(() => f.read(G.size, 1), "FLASH_POWER_LOSS", "even an invalid call");
}

test("a clean power cut after N ops changes nothing in the failing op and kills the part", () => {
  const f = NorEmulator.memory();
  f.program(0, pattern(16));
  f.armPowerCut({ afterOps: 2, torn: false });
  f.program(0x100, pattern(16, 1));
  f.erase(5);
  assert.not.ok(f.powerLost);
  const before = f.image();
  throwsCode(() => f.program(0x200, pattern(16, 2)), "FLASH_POWER_LOSS", "third op");
  assert.equal(f.image(), before, "the failing program had no effect");
  assert.equal(f.stats.ops, 3, "the cut op is not counted");
  assertDead(f);
});

test("a clean power cut during erase leaves the sector and its erase count alone", () => {
  const f = fullPart(1);
  const before = f.image();
  f.armPowerCut({ afterOps: 0, torn: false });
  throwsCode(() => f.erase(4), "FLASH_POWER_LOSS");
  assert.equal(f.image(), before);
  assert.is(f.eraseCount(4), 0);
  assertDead(f);
});

test("armPowerCut() with afterOps 0 fails the very next op; reads and refused calls do not count", () => {
  const f = NorEmulator.memory();
  f.armPowerCut({ afterOps: 0, torn: false });
  f.read(0, 16);
  throwsCode(() => f.program(2, pattern(4)), "FLASH_ALIGN", "a refused program");
  assert.not.ok(f.powerLost);
  throwsCode(() => f.program(0, pattern(4)), "FLASH_POWER_LOSS");
  assert.ok(allFF(f.image()));
  assertDead(f);
});

test("armPowerCut(null) disarms", () => {
  const f = NorEmulator.memory();
  f.armPowerCut({ afterOps: 1, torn: true });
  f.armPowerCut(null);
  for (let i = 0; i < 5; i++) f.program(i * 4, pattern(4, i));
  f.erase(3);
  assert.not.ok(f.powerLost);
  assert.throws(() => f.armPowerCut({ afterOps: -1, torn: false }), RangeError);
});

/** Checks what a torn program of `data` at `at` left; returns the index of the first difference. */
function checkTornProgram(
  img: Uint8Array,
  before: Uint8Array,
  at: number,
  data: Uint8Array,
): number {
  for (let i = 0; i < img.length; i++) {
    if (i < at || i >= at + data.length) {
      if (img[i] !== before[i]) assert.unreachable(`byte ${i} outside the program changed`);
    }
  }
  const got = img.subarray(at, at + data.length);
  let k = 0;
  while (k < data.length && got[k] === data[k]) k++;
  if (k < data.length) {
    const torn = got[k]!;
    assert.is(torn & data[k]!, data[k]!, `torn byte ${k} only clears bits the data clears`);
    for (let i = k + 1; i < data.length; i++) assert.is(got[i], 0xff, `byte ${i} after the tear`);
  }
  return k;
}

test("a torn program leaves a prefix, then one partly programmed byte, then erased bytes", () => {
  const data = pattern(256, 5);
  const seen = new Set<number>();
  let partial = 0;
  for (let seed = 0; seed < 64; seed++) {
    const f = NorEmulator.memory(G, { seed });
    f.program(0x4000, pattern(256, 1));
    const before = f.image();
    f.armPowerCut({ afterOps: 0, torn: true });
    throwsCode(() => f.program(0x4100, data), "FLASH_POWER_LOSS");
    const img = f.image();
    const k = checkTornProgram(img, before, 0x4100, data);
    seen.add(k);
    const t = img[0x4100 + k];
    if (k < 256 && t !== 0xff && t !== data[k]) partial++;
    assertDead(f);
  }
  assert.ok(seen.size > 20, `prefix lengths vary (${seen.size} distinct)`);
  assert.ok(partial > 10, `torn bytes are often partly programmed (${partial})`);
});

test("a torn program with a scripted random source tears exactly where told", () => {
  const draws = [0.5, 0x0f / 256];
  const f = NorEmulator.memory(G, { random: () => draws.shift() ?? 0 });
  const data = new Uint8Array(256).fill(0x00);
  f.armPowerCut({ afterOps: 0, torn: true });
  throwsCode(() => f.program(0x200, data), "FLASH_POWER_LOSS");
  const page = f.image().subarray(0x200, 0x300);
  assert.ok(page.subarray(0, 128).every((x) => x === 0), "prefix of 128 programmed");
  assert.is(page[128], 0xf0, "bits of the mask cleared in the torn byte");
  assert.ok(allFF(page.subarray(129)), "rest erased");
});

test("a torn erase changes only its sector and counts as an erase cycle", () => {
  const kinds = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const f = fullPart(seed);
    const before = f.image();
    f.armPowerCut({ afterOps: 0, torn: true });
    throwsCode(() => f.erase(6), "FLASH_POWER_LOSS");
    const img = f.image();
    const s0 = 6 * G.eraseSize;
    assert.ok(equal(img.subarray(0, s0), before.subarray(0, s0)), "sectors before intact");
    assert.ok(equal(img.subarray(s0 + G.eraseSize), before.subarray(s0 + G.eraseSize)), "after");
    assert.is(f.eraseCount(6), 1);
    const sector = img.subarray(s0, s0 + G.eraseSize);
    if (allFF(sector)) kinds.add("erased");
    else if (sector.every((x) => x === 0)) kinds.add("zeros");
    else if (equal(sector, before.subarray(s0, s0 + G.eraseSize))) kinds.add("untouched");
    else kinds.add("mixed");
    assertDead(f);
  }
  assert.ok(kinds.has("zeros") && kinds.has("mixed"), `torn erases vary: ${[...kinds]}`);
});

test("fromImage(image()) after a cut gives a working part (the reboot)", () => {
  const f = fullPart(3, SMALL);
  f.armPowerCut({ afterOps: 1, torn: true });
  f.erase(1);
  throwsCode(() => f.erase(2), "FLASH_POWER_LOSS");
  const img = f.image();
  const g = NorEmulator.fromImage(img, SMALL);
  assert.not.ok(g.powerLost);
  assert.equal(g.read(0, SMALL.size), img);
  g.erase(2);
  g.program(2 * 1024, pattern(64, 9));
  assert.equal(g.read(2 * 1024, 64), pattern(64, 9));
  g.sync();
  g.close();
});

test("the same seed gives the same torn image; different seeds differ", () => {
  const run = (seed: number) => {
    const f = fullPart(0);
    const g = NorEmulator.fromImage(f.image(), G, { seed });
    g.erase(1);
    g.armPowerCut({ afterOps: 1, torn: true });
    g.program(0x1000, pattern(256, 2));
    throwsCode(() => g.program(0x1100, pattern(256, 3)), "FLASH_POWER_LOSS");
    const h = NorEmulator.fromImage(g.image(), G, { seed });
    h.armPowerCut({ afterOps: 0, torn: true });
    throwsCode(() => h.erase(9), "FLASH_POWER_LOSS");
    return h.image();
  };
  assert.ok(equal(run(42), run(42)), "seed 42 twice");
  const others = [1, 2, 3, 4].map(run);
  assert.ok(others.some((img) => !equal(img, run(42))), "other seeds tear differently");
});

test("a file-backed part writes the torn state to its file and refuses sync after the cut", () => {
  const path = tmpPath();
  const f = NorEmulator.openFile(path, SMALL, { seed: 7 });
  for (let o = 0; o < 4096; o += 64) f.program(o, pattern(64, o));
  f.sync();
  f.armPowerCut({ afterOps: 0, torn: true });
  throwsCode(() => f.erase(1), "FLASH_POWER_LOSS");
  throwsCode(() => f.sync(), "FLASH_POWER_LOSS");
  f.close();
  const onDisk = Deno.readFileSync(path);
  assert.ok(equal(onDisk, f.image()), "file holds the torn image");
  const g = NorEmulator.openFile(path, SMALL);
  assert.equal(g.read(0, SMALL.size), f.image());
  g.close();
});

test.run();
