/** capacity.ts: what a partition holds, and whether that is enough for linkd's records. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_GEOMETRY } from "../flash/driver.ts";
import {
  capacityShortfall,
  MIN_LIVE_BYTES,
  MIN_RECORD_BYTES,
  sectorsHoldEntries,
  storeCapacity,
} from "./capacity.ts";

const sectors = (n: number, eraseSize = 4096) => ({
  ...DEFAULT_GEOMETRY,
  eraseSize,
  pageSize: Math.min(256, eraseSize),
  size: n * eraseSize,
});

test("storeCapacity() grows with the sectors; the default partition holds linkd's records", () => {
  assert.is(storeCapacity(sectors(4)).maxPayload, 987);
  const d = storeCapacity(DEFAULT_GEOMETRY);
  assert.ok(d.maxPayload >= MIN_RECORD_BYTES && d.liveLimit >= MIN_LIVE_BYTES);
  assert.is(capacityShortfall(DEFAULT_GEOMETRY), null);
});

test("capacityShortfall() names what a partition holds and the fewest sectors that are enough", () => {
  assert.equal(capacityShortfall(sectors(4)), {
    sectors: 4,
    maxPayload: 987,
    liveLimit: storeCapacity(sectors(4)).liveLimit,
    sectorsNeeded: 13,
  });
  assert.is(capacityShortfall(sectors(12))?.sectorsNeeded, 13);
  assert.is(capacityShortfall(sectors(13)), null);
  assert.is(capacityShortfall(sectors(64, 256))?.sectorsNeeded, 160);
  // Sectors too small for the store's entries: no number of them is enough.
  assert.not.ok(sectorsHoldEntries(sectors(1024, 64)));
  assert.is(capacityShortfall(sectors(1024, 64))?.sectorsNeeded, null);
});

test.run();
