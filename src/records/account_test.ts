/** The account record's codec: it round-trips and refuses bad bytes. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeCbor } from "../cbor.ts";
import { decodeAccountRecord, encodeAccountRecord } from "./account.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);

test("decodeAccountRecord() round-trips and refuses malformed records", () => {
  const r = { fingerprint: B, previous: A, current: true };
  assert.equal(decodeAccountRecord(encodeAccountRecord(r)), r);
  for (
    const bad of [null, [], { fingerprint: "x", current: true }, { fingerprint: A }, {
      fingerprint: A,
      previous: 5,
      current: true,
    }, { fingerprint: A.toUpperCase(), current: true }]
  ) {
    assert.throws(() => decodeAccountRecord(encodeCbor(bad)), /account record/);
  }
});

test.run();
