/**
 * Power loss at every program and erase step of a long workload, torn and clean.
 *
 * The workload runs once on a "main" flash. Before each program or erase it would make, the
 * test forks the flash image, cuts power during that very operation on the fork (once leaving
 * it untouched, once torn), remounts the fork, and requires every record to be exactly its
 * last committed value, or for the record being written, the value being written. Then the
 * workload continues on the fork: the interrupted write is done again and a second write
 * follows, each proved by a remount. Any other outcome fails with the seed and step that
 * reproduce it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { equal } from "../bytes.ts";
import { Code, isLinkdError } from "../errors.ts";
import type { FlashDriver, FlashGeometry } from "../flash/driver.ts";
import { NorEmulator } from "../flash/nor_emulator.ts";
import { RecordStore } from "./record_store.ts";
import { payload, prng } from "../../test/support/random.ts";

const TOKENS = 3;

/** A flash driver that calls `before` ahead of every program and erase it passes on. */
class Tap implements FlashDriver {
  constructor(readonly inner: NorEmulator, readonly before: (op: Op) => void) {}
  get geometry(): FlashGeometry {
    return this.inner.geometry;
  }
  read(offset: number, length: number): Uint8Array {
    return this.inner.read(offset, length);
  }
  program(offset: number, data: Uint8Array): void {
    this.before({ kind: "program", offset, data });
    this.inner.program(offset, data);
  }
  erase(sector: number): void {
    this.before({ kind: "erase", sector });
    this.inner.erase(sector);
  }
  sync(): void {
    this.inner.sync();
  }
  close(): void {
    this.inner.close();
  }
}

type Op = { kind: "program"; offset: number; data: Uint8Array } | { kind: "erase"; sector: number };

interface Write {
  key: number;
  value: Uint8Array | null; // null: a delete
}

interface Model {
  committed: Map<number, Uint8Array>;
  inflight: Write | null;
}

function check(store: RecordStore, model: Model, where: string): void {
  const keys = new Set([...model.committed.keys(), ...store.keys()]);
  if (model.inflight) keys.add(model.inflight.key);
  for (const key of keys) {
    const got = store.get(key)?.data ?? null;
    const old = model.committed.get(key) ?? null;
    const same = (a: Uint8Array | null, b: Uint8Array | null) =>
      a === null || b === null ? a === b : equal(a, b);
    if (same(got, old)) continue;
    if (model.inflight?.key === key && same(got, model.inflight.value)) continue;
    assert.unreachable(
      `${where}: record ${key} is neither its last committed value nor the one being written`,
    );
  }
}

function apply(store: RecordStore, w: Write): void {
  if (w.value) store.put(w.key, w.value);
  else store.delete(w.key);
}

/** The workload: identity and device key once, then token updates, scope notes and logouts. */
function workload(updates: number, seed: number): Write[] {
  const rand = prng(seed);
  const out: Write[] = [
    { key: 1, value: payload(1, 0, 310) },
    { key: 2, value: payload(2, 0, 120) },
  ];
  for (let i = 1; i <= updates; i++) {
    out.push({ key: TOKENS, value: payload(TOKENS, i, 2048 + Math.floor(rand() * 2049)) });
    if (i % 25 === 0) out.push({ key: 4, value: payload(4, i, 40 + Math.floor(rand() * 200)) });
    if (i % 97 === 0) out.push({ key: TOKENS, value: null }); // logout
  }
  return out;
}

interface Tally {
  steps: number;
  torn: number;
  clean: number;
  programs: number;
  erases: number;
}

function prove(geometry: FlashGeometry, updates: number, seed: number): Tally {
  const writes = workload(updates, seed);
  const model: Model = { committed: new Map(), inflight: null };
  const tally: Tally = { steps: 0, torn: 0, clean: 0, programs: 0, erases: 0 };
  let current = 0;
  const main = NorEmulator.memory(geometry);
  const tap = new Tap(main, (op) => {
    const step = tally.steps++;
    if (op.kind === "program") tally.programs++;
    else tally.erases++;
    const image = main.image();
    for (const torn of [false, true]) {
      const where = `seed ${seed} step ${step} (${op.kind}, ${
        torn ? "torn" : "clean"
      }, write ${current})`;
      const fork = NorEmulator.fromImage(image, geometry, { seed: step * 2 + (torn ? 1 : 0) });
      fork.armPowerCut({ afterOps: 0, torn });
      let cut = false;
      try {
        if (op.kind === "program") fork.program(op.offset, op.data);
        else fork.erase(op.sector);
      } catch (e) {
        cut = isLinkdError(e, Code.FLASH_POWER_LOSS);
      }
      assert.ok(cut, `${where}: the power cut did not happen`);
      // Reboot: a fresh part with what the cut left, mounted from scratch.
      const dev = NorEmulator.fromImage(fork.image(), geometry);
      const store = RecordStore.mount(dev);
      check(store, model, where);
      assert.ok(store.health.ok, `${where}: ${store.health.detail}`);
      // The workload continues: the interrupted write again, then the next one.
      const next = writes[current + 1] ?? { key: 9, value: payload(9, step, 64) };
      apply(store, writes[current]!);
      apply(store, next);
      const after = RecordStore.mount(NorEmulator.fromImage(dev.image(), geometry));
      const expect = new Map(model.committed);
      for (const w of [writes[current]!, next]) {
        if (w.value) expect.set(w.key, w.value);
        else expect.delete(w.key);
      }
      check(after, { committed: expect, inflight: null }, `${where}, continued`);
      if (torn) tally.torn++;
      else tally.clean++;
    }
  });
  const store = RecordStore.mount(tap);
  for (current = 0; current < writes.length; current++) {
    const w = writes[current]!;
    model.inflight = w;
    apply(store, w);
    if (w.value) model.committed.set(w.key, w.value);
    else model.committed.delete(w.key);
    model.inflight = null;
  }
  const laps = Math.min(...main.eraseCounts());
  assert.ok(laps >= 3, `the workload made ${laps} full reclaim cycles, wanted at least 3`);
  return tally;
}

test("RecordStore survives power loss at every program and erase of 300 token updates", () => {
  const g: FlashGeometry = { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 };
  const t = prove(g, 300, 1);
  console.log(
    `  proved ${t.steps} cut points (${t.programs} programs, ${t.erases} erases), ` +
      `${t.clean} clean and ${t.torn} torn cuts, each remounted and continued`,
  );
  assert.ok(t.steps > 300 * 8, "every update made several flash steps");
  assert.is(t.clean + t.torn, 2 * t.steps);
});

test("RecordStore survives power loss at every step on a small part with byte writes", () => {
  const g: FlashGeometry = { size: 32768, eraseSize: 2048, pageSize: 64, writeSize: 1 };
  const t = prove(g, 120, 2);
  console.log(`  proved ${t.steps} cut points on 2 KiB sectors, 64-byte pages, byte writes`);
  assert.ok(t.steps > 120 * 8);
});

test("RecordStore survives repeated cuts on one timeline, with damage piling up", () => {
  // Cut, reboot and go on, again and again, on the same flash: torn leftovers accumulate.
  const g: FlashGeometry = { size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 };
  const rand = prng(3);
  const writes = workload(400, 3);
  let image = NorEmulator.memory(g).image();
  const committed = new Map<number, Uint8Array>();
  const commit = (w: Write) => w.value ? committed.set(w.key, w.value) : committed.delete(w.key);
  let inflight: Write | null = null;
  let cuts = 0;
  for (let i = 0; i < writes.length || inflight;) {
    const dev = NorEmulator.fromImage(image, g, { seed: cuts + 1 });
    const store = RecordStore.mount(dev);
    check(store, { committed, inflight }, `after cut ${cuts}`);
    if (inflight) {
      apply(store, inflight); // the interrupted write, done again after the reboot
      commit(inflight);
      inflight = null;
    }
    dev.armPowerCut({ afterOps: Math.floor(rand() * 40), torn: rand() < 0.7 });
    try {
      for (; i < writes.length; i++) {
        inflight = writes[i]!;
        apply(store, inflight);
        commit(inflight);
        inflight = null;
      }
    } catch (e) {
      if (!isLinkdError(e, Code.FLASH_POWER_LOSS)) throw e;
      cuts++;
      i++;
    }
    image = dev.image();
  }
  console.log(`  ${cuts} cuts on one timeline, each remounted and continued`);
  assert.ok(cuts > 50, `only ${cuts} cuts`);
});

test.run();
