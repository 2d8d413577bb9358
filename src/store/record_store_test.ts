import { test } from "uvu";
import * as assert from "uvu/assert";
import { codeOf } from "../../test/support/assert.ts";
import { equal } from "../bytes.ts";
import { Code, LinkdError } from "../errors.ts";
import { NorEmulator } from "../flash/nor_emulator.ts";
import type { FlashGeometry } from "../flash/driver.ts";
import { RecordStore } from "./record_store.ts";
import { bytesOf, payload, prng } from "../../test/support/random.ts";

const GEOMETRIES: FlashGeometry[] = [
  { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 },
  { size: 16384, eraseSize: 1024, pageSize: 64, writeSize: 1 },
  { size: 131072, eraseSize: 8192, pageSize: 512, writeSize: 16 },
];

function remount(dev: NorEmulator): { dev: NorEmulator; store: RecordStore } {
  const d = NorEmulator.fromImage(dev.image(), dev.geometry);
  return { dev: d, store: RecordStore.mount(d) };
}

test("RecordStore.mount() on blank flash is empty and healthy", () => {
  const store = RecordStore.mount(NorEmulator.memory());
  assert.equal(store.keys(), []);
  assert.is(store.get(3), null);
  assert.is(store.health.ok, true);
  assert.is(store.health.detail, undefined);
  assert.is(store.health.freeBytes, 16 * store.layout.dataSize);
});

test("RecordStore.put() then get() and remount return the same bytes", () => {
  for (const g of GEOMETRIES) {
    const dev = NorEmulator.memory(g);
    const store = RecordStore.mount(dev);
    const a = payload(1, 1, 300);
    const b = payload(2, 1, 3000);
    const s1 = store.put(1, a);
    const s2 = store.put(2, b);
    assert.ok(s2 > s1);
    assert.equal(store.get(1)!.data, a);
    const again = remount(dev).store;
    assert.equal(again.keys(), [1, 2]);
    assert.equal(again.get(1)!.data, a);
    assert.equal(again.get(2)!.data, b);
    assert.is(again.get(2)!.seq, s2);
    assert.is(again.health.ok, true);
  }
});

test("RecordStore: the newest sequence number wins across many updates and reclaims", () => {
  for (const g of GEOMETRIES) {
    const dev = NorEmulator.memory(g);
    let store = RecordStore.mount(dev);
    const rand = prng(7);
    const latest = new Map<number, Uint8Array | null>();
    const max = Math.min(store.maxPayload, 4000);
    for (let i = 0; i < 1500; i++) {
      const key = 1 + Math.floor(rand() * 5);
      if (rand() < 0.1) {
        store.delete(key);
        latest.set(key, null);
      } else {
        const v = payload(key, i, 1 + Math.floor(rand() * (key === 3 ? max : 200)));
        store.put(key, v);
        latest.set(key, v);
      }
      if (i % 37 === 0) store = RecordStore.mount(dev);
    }
    const again = remount(dev).store;
    for (const [k, v] of latest) {
      const got = again.get(k);
      if (v === null) assert.is(got, null, `key ${k} deleted`);
      else assert.ok(got && equal(got.data, v), `key ${k} on ${g.eraseSize}`);
    }
    assert.ok(Math.min(...dev.eraseCounts()) >= 2, `several full laps on ${g.eraseSize}`);
  }
});

test("RecordStore spreads erases evenly over every sector", () => {
  const dev = NorEmulator.memory();
  const store = RecordStore.mount(dev);
  store.put(1, payload(1, 0, 400));
  for (let i = 0; i < 2000; i++) store.put(3, payload(3, i, 2048 + (i % 2048)));
  const counts = dev.eraseCounts();
  const min = Math.min(...counts);
  const max = Math.max(...counts);
  assert.ok(min > 0, "every sector used");
  assert.ok(max - min <= 1, `erase counts ${counts.join(",")} differ by more than one`);
});

test("RecordStore.delete() hides a record across remounts and is a no-op when missing", () => {
  const dev = NorEmulator.memory();
  const store = RecordStore.mount(dev);
  store.put(5, payload(5, 1, 100));
  store.delete(5);
  store.delete(6);
  assert.is(store.get(5), null);
  assert.is(remount(dev).store.get(5), null);
  assert.equal(remount(dev).store.keys(), []);
});

test("RecordStore.scrub() leaves no superseded or deleted bytes anywhere on flash", () => {
  const dev = NorEmulator.memory();
  const store = RecordStore.mount(dev);
  const keep = payload(1, 1, 500);
  store.put(1, keep);
  const secret = payload(3, 99, 3000);
  store.put(3, secret);
  for (let i = 0; i < 3; i++) store.put(3, payload(3, i, 3000));
  store.delete(3);
  const marker = secret.subarray(100, 132);
  const has = (img: Uint8Array, m: Uint8Array) => {
    outer: for (let i = 0; i + m.length <= img.length; i++) {
      for (let j = 0; j < m.length; j++) if (img[i + j] !== m[j]) continue outer;
      return true;
    }
    return false;
  };
  assert.ok(has(dev.image(), marker), "old data still on flash before scrub");
  store.scrub();
  assert.not.ok(has(dev.image(), marker), "old data gone after scrub");
  const again = remount(dev);
  assert.equal(again.store.get(1)!.data, keep);
  assert.is(again.store.get(3), null);
  again.store.put(3, payload(3, 5, 2000));
  assert.equal(remount(again.dev).store.get(3)!.data, payload(3, 5, 2000));
});

test("RecordStore refuses oversized records and a full store with coded errors", () => {
  const dev = NorEmulator.memory();
  const store = RecordStore.mount(dev);
  assert.is(codeOf(() => store.put(1, new Uint8Array(store.maxPayload + 1))), Code.STORE_TOO_LARGE);
  let full = "";
  for (let k = 1; k < 60 && !full; k++) {
    full = codeOf(() => store.put(k, payload(k, 0, 4000)));
    if (full === "no error") full = "";
  }
  assert.is(full, Code.STORE_FULL);
  // What was stored before is intact and the store still works.
  assert.ok(remount(dev).store.get(1));
  store.delete(1);
  store.put(2, payload(2, 9, 100));
  assert.equal(remount(dev).store.get(2)!.data, payload(2, 9, 100));
});

test("RecordStore.put() rejects bad keys and sequence numbers as a caller's mistake", () => {
  const store = RecordStore.mount(NorEmulator.memory());
  assert.throws(() => store.put(0, new Uint8Array(1)), RangeError);
  assert.throws(() => store.put(255, new Uint8Array(1)), RangeError);
  assert.throws(() => store.put(1, new Uint8Array(1), 99), RangeError);
  const s = store.allocateSeq();
  store.put(1, new Uint8Array(1), s);
  assert.throws(() => store.put(1, new Uint8Array(1), s), RangeError);
});

test("RecordStore.mount() survives hostile flash: random images and bit flips never crash it", () => {
  const rand = prng(11);
  for (let i = 0; i < 50; i++) {
    const g = GEOMETRIES[i % GEOMETRIES.length]!;
    const store = RecordStore.mount(NorEmulator.fromImage(bytesOf(rand, g.size), g));
    assert.equal(store.keys(), []);
  }
  // A real store with random bit flips: mount never throws, and reports what it lost.
  const dev = NorEmulator.memory();
  const store = RecordStore.mount(dev);
  for (let i = 0; i < 30; i++) store.put(1 + (i % 4), payload(1 + (i % 4), i, 1500));
  const clean = dev.image();
  let lost = 0;
  for (let i = 0; i < 300; i++) {
    const img = clean.slice();
    const bit = Math.floor(rand() * img.length * 8);
    img[bit >> 3]! ^= 1 << (bit & 7);
    const s = RecordStore.mount(NorEmulator.fromImage(img, dev.geometry));
    for (const k of s.keys()) {
      if (s.health.lostKeys.includes(k)) {
        assert.is(codeOf(() => s.get(k)), Code.STORE_CORRUPT, "a damaged record reads as damaged");
        continue;
      }
      const r = s.get(k)!;
      assert.is(new DataView(r.data.buffer).getUint32(0), k, "a record never comes back altered");
    }
    if (!s.health.ok) lost++;
    s.put(9, payload(9, i, 100)); // and it still takes writes
  }
  assert.ok(lost > 0, "some flips hit live records and are reported");
});

test("RecordStore keeps working when a write fails, with the old or new value", () => {
  const dev = NorEmulator.memory(undefined, { endurance: 3 });
  const store = RecordStore.mount(dev);
  let last: Uint8Array | null = null;
  let error = "";
  for (let i = 0; i < 500 && !error; i++) {
    const v = payload(3, i, 3000);
    try {
      store.put(3, v);
      last = v;
    } catch (e) {
      error = e instanceof LinkdError ? e.code : String(e);
    }
  }
  assert.is(error, Code.FLASH_WORN_OUT);
  assert.ok(last && equal(store.get(3)!.data, last));
});

test.run();
