/**
 * Damage, not power loss: a bit flipped anywhere in a used flash image. The store must never
 * hand back an older or altered record while it reports itself healthy: every key reads its
 * latest value, or reads as damaged (STORE_CORRUPT), or the health report says data was lost.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { equal } from "../bytes.ts";
import { Code, isLinkdError } from "../errors.ts";
import type { FlashGeometry } from "../flash/driver.ts";
import { NorEmulator } from "../flash/nor_emulator.ts";
import { RecordStore } from "./record_store.ts";
import { payload, prng } from "../../test/support/random.ts";

interface Outcome {
  intact: number;
  reported: number;
}

/** A store after several laps of updates to a few keys, with the latest value of each. */
function used(g: FlashGeometry, sizes: (key: number, i: number) => number, updates: number) {
  const dev = NorEmulator.memory(g);
  const store = RecordStore.mount(dev);
  const latest = new Map<number, Uint8Array>();
  for (let i = 0; i < updates; i++) {
    const key = 1 + (i % 4);
    const v = payload(key, i, sizes(key, i));
    store.put(key, v);
    latest.set(key, v);
  }
  assert.ok(Math.min(...dev.eraseCounts()) >= 2, "several laps before the flips");
  return { image: dev.image(), latest };
}

/** Flips one bit and checks the no-silent-loss rule; returns whether anything was reported. */
function flipAndCheck(
  g: FlashGeometry,
  image: Uint8Array,
  latest: Map<number, Uint8Array>,
  bit: number,
  out: Outcome,
  write: boolean,
): void {
  const img = image.slice();
  img[bit >> 3]! ^= 1 << (bit & 7);
  const dev = NorEmulator.fromImage(img, g);
  const store = RecordStore.mount(dev);
  const health = store.health;
  let allLatest = true;
  for (const [key, v] of latest) {
    let got: Uint8Array | null = null;
    try {
      got = store.get(key)?.data ?? null;
    } catch (e) {
      assert.ok(isLinkdError(e, Code.STORE_CORRUPT), `bit ${bit}: key ${key} threw ${e}`);
      assert.ok(
        health.lostKeys.includes(key),
        `bit ${bit}: key ${key} damaged but not in lostKeys`,
      );
      allLatest = false;
      continue;
    }
    if (got === null || !equal(got, v)) {
      allLatest = false;
      assert.not.ok(health.ok, `bit ${bit}: key ${key} is not its latest value, yet health is ok`);
    }
  }
  if (allLatest) out.intact++;
  else out.reported++;
  if (write) {
    // The store still takes writes, and they survive a remount.
    const v = payload(9, bit, 64);
    store.put(9, v);
    const again = RecordStore.mount(NorEmulator.fromImage(dev.image(), g));
    assert.ok(equal(again.get(9)!.data, v), `bit ${bit}: a write after the damage was lost`);
  }
}

test("RecordStore: every single-bit flip of a small used image is read right or reported", () => {
  const g: FlashGeometry = { size: 8192, eraseSize: 1024, pageSize: 64, writeSize: 4 };
  const { image, latest } = used(g, (k, i) => 40 + ((k * 37 + i * 11) % 300), 200);
  const out: Outcome = { intact: 0, reported: 0 };
  for (let bit = 0; bit < image.length * 8; bit++) {
    flipAndCheck(g, image, latest, bit, out, bit % 61 === 0);
  }
  console.log(
    `  ${image.length * 8} flips: ${out.intact} read right, ${out.reported} reported as damage`,
  );
  assert.is(out.intact + out.reported, image.length * 8);
  assert.ok(out.reported > 0);
});

test("RecordStore: sampled bit flips of a 64 KiB image with 2-4 KiB records", () => {
  const g: FlashGeometry = { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 };
  const { image, latest } = used(
    g,
    (k, i) => (k === 3 ? 2048 + ((i * 97) % 2048) : 100 + k * 50),
    400,
  );
  const rand = prng(5);
  const out: Outcome = { intact: 0, reported: 0 };
  for (let i = 0; i < 4000; i++) {
    flipAndCheck(g, image, latest, Math.floor(rand() * image.length * 8), out, i % 50 === 0);
  }
  // And every bit of every sector header and retire word.
  for (let s = 0; s < g.size / g.eraseSize; s++) {
    for (let bit = 0; bit < 20 * 8; bit++) {
      flipAndCheck(g, image, latest, s * g.eraseSize * 8 + bit, out, false);
    }
  }
  console.log(
    `  ${out.intact + out.reported} flips: ${out.intact} read right, ${out.reported} reported`,
  );
});

test("RecordStore bridges a damaged sector header: no record is lost", () => {
  const g: FlashGeometry = { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 };
  const dev = NorEmulator.memory(g);
  const store = RecordStore.mount(dev);
  const vals = [1, 2, 3, 4, 5, 6].map((k) => payload(k, 0, 1500));
  vals.forEach((v, i) => store.put(i + 1, v));
  for (let s = 0; s < 3; s++) {
    const img = dev.image();
    img[s * g.eraseSize + 5]! ^= 0x10; // the sector's sequence number
    const m = RecordStore.mount(NorEmulator.fromImage(img, g));
    vals.forEach((v, i) => assert.ok(equal(m.get(i + 1)!.data, v), `sector ${s}: record ${i + 1}`));
    assert.is(m.health.bridgedSectors, 1, `sector ${s}`);
  }
});

test("RecordStore keeps the entries after a damaged entry header, and says something was lost", () => {
  const dev = NorEmulator.memory();
  const store = RecordStore.mount(dev);
  for (let k = 1; k <= 5; k++) store.put(k, payload(k, 0, 200));
  const img = dev.image();
  img[20 + 9]! ^= 0x04; // inside the first entry's header
  const m = RecordStore.mount(NorEmulator.fromImage(img, dev.geometry));
  for (let k = 2; k <= 5; k++) {
    assert.ok(equal(m.get(k)!.data, payload(k, 0, 200)), `record ${k} kept`);
  }
  assert.is(m.health.ok, false);
  assert.match(m.health.detail ?? "", /damaged region/);
});

test("RecordStore: a damaged newest record reads as damaged, never as its older value, until rewritten", () => {
  const g: FlashGeometry = { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 };
  const dev = NorEmulator.memory(g);
  const store = RecordStore.mount(dev);
  store.put(1, payload(1, 0, 300));
  store.put(1, payload(1, 1, 300)); // the newest: damage it
  const img = dev.image();
  const at = img.findIndex((_, i) =>
    i > 20 && equal(img.subarray(i, i + 8), payload(1, 1, 300).subarray(0, 8))
  );
  img[at + 100]! ^= 0x01;
  const dmg = NorEmulator.fromImage(img, g);
  const m = RecordStore.mount(dmg);
  assert.throws(() => m.get(1), (e: unknown) => isLinkdError(e, Code.STORE_CORRUPT));
  assert.equal(m.health.lostKeys, [1]);
  // The marker survives reclaim cycles and a scrub: the loss stays reported.
  for (let i = 0; i < 200; i++) m.put(3, payload(3, i, 3000));
  m.scrub();
  const laterDev = NorEmulator.fromImage(dmg.image(), g);
  const later = RecordStore.mount(laterDev);
  assert.equal(later.health.lostKeys, [1]);
  assert.is(later.health.ok, false);
  assert.throws(() => later.get(1), (e: unknown) => isLinkdError(e, Code.STORE_CORRUPT));
  assert.ok(later.keys().includes(1));
  // Writing the key again heals it.
  later.put(1, payload(1, 2, 300));
  const healed = RecordStore.mount(NorEmulator.fromImage(laterDev.image(), g));
  assert.equal(healed.health.lostKeys, []);
  assert.ok(equal(healed.get(1)!.data, payload(1, 2, 300)));
});

test("RecordStore: data without one valid sector header is damage, not a blank store", () => {
  const g: FlashGeometry = { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 };
  const dev = NorEmulator.memory(g);
  RecordStore.mount(dev).put(1, payload(1, 0, 200)); // one sector in use
  const good = dev.image();
  const cases: [string, Uint8Array][] = [
    ["a flipped bit in the only sector header", good.slice()],
    ["random bytes", payload(7, 7, g.size)],
    ["all zero", new Uint8Array(g.size)],
  ];
  cases[0]![1][5]! ^= 0x01;
  for (const [name, image] of cases) {
    const flash = NorEmulator.fromImage(image, g);
    const m = RecordStore.mount(flash);
    assert.is(m.health.noLog, true, name);
    assert.is(m.health.ok, false, name);
    assert.match(m.health.detail ?? "", /no valid sector/, name);
    // Nothing is written over the evidence until a command formats it.
    assert.throws(
      () => m.put(2, payload(2, 0, 10)),
      (e: unknown) => isLinkdError(e, Code.STORE_CORRUPT),
    );
    assert.ok(equal(flash.image(), image), `${name}: left as it was`);
    m.format();
    assert.is(m.health.ok, true, name);
    assert.ok(flash.image().every((b) => b === 0xff), `${name}: formatted`);
    m.put(2, payload(2, 0, 10));
  }
  // A first sector opening cut by power loss (a torn header, nothing after it) is blank.
  const torn = new Uint8Array(g.size).fill(0xff);
  torn.set(good.subarray(0, 6), 4096 * 3);
  const t = RecordStore.mount(NorEmulator.fromImage(torn, g));
  assert.is(t.health.ok, true);
  assert.is(t.health.noLog, false);
  t.put(2, payload(2, 0, 10));
});

test.run();
