/**
 * The framer cuts any chunking of a stream into the same packets and refuses a bad or
 * oversized fixed header before reading the body; seeded fuzzing of the framer and the
 * decoder finds nothing but MqttError `protocol`.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prng } from "../../../test/support/random.ts";
import { MqttError } from "./errors.ts";
import { Framer } from "./framer.ts";
import { decodePacket, encodePacket, type Packet, type Version } from "./packets.ts";
import { bytes, hex } from "../../../test/support/mqtt.ts";

const STREAM = [
  "20 03 00 00 00", // CONNACK v5
  "d0 00", // PINGRESP
  "33 25 00 03 61 2f 62 00 0a 1b 01 01 02 00 00 0e 10 03 00 01 74 08 00 01 72 09 00 02 c0 de" +
  " 26 00 01 6b 00 01 76 68 69", // PUBLISH with properties
  "40 02 00 0a", // PUBACK
  "90 04 00 01 00 01", // SUBACK
].map(bytes);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function reasonOf(f: () => void): string | undefined {
  try {
    f();
  } catch (e) {
    assert.instance(e, MqttError);
    return (e as MqttError).reason;
  }
  return undefined;
}

test("Framer.feed() yields the same packets for every chunk size", () => {
  const all = concat(STREAM);
  const big = new Uint8Array(300).fill(0x61);
  const long = encodePacket({
    type: "publish",
    topic: "t",
    payload: big,
    qos: 0,
    retain: false,
    dup: false,
    packetId: 0,
    properties: {},
  }, 4); // a two-byte remaining length
  const stream = concat([all, long, all]);
  const expected = [...STREAM, long, ...STREAM].map(hex);
  for (let size = 1; size <= stream.length; size++) {
    const f = new Framer(1024);
    const got: string[] = [];
    for (let i = 0; i < stream.length; i += size) {
      for (const p of f.feed(stream.subarray(i, i + size))) got.push(hex(p));
    }
    assert.equal(got, expected, `chunks of ${size}`);
    assert.is(f.pending, false);
  }
});

test("Framer.feed() holds a partial packet back until it is complete", () => {
  const f = new Framer(1024);
  const b = STREAM[2]!;
  assert.equal([...f.feed(b.subarray(0, 10))], []);
  assert.is(f.pending, true);
  assert.equal([...f.feed(b.subarray(10))].map(hex), [hex(b)]);
});

test("Framer.feed() refuses a packet over the maximum as soon as its header arrives", () => {
  // 16 bytes in all (2 of header + 14) passes; 17 does not, with no body sent yet.
  assert.is([...new Framer(16).feed(bytes("30 0e"))].length, 0);
  assert.is(reasonOf(() => [...new Framer(16).feed(bytes("30 0f"))]), "packet_too_large");
  // 256 MB announced to a 1 MiB framer: refused at the header, nothing allocated for it.
  assert.is(
    reasonOf(() => [...new Framer(1024 * 1024).feed(bytes("30 ff ff ff 7f"))]),
    "packet_too_large",
  );
  // The header of a big packet split across chunks.
  const f = new Framer(1000);
  assert.is([...f.feed(bytes("30 e8"))].length, 0);
  assert.is(reasonOf(() => [...f.feed(bytes("07"))]), "packet_too_large"); // 1000 + 3 bytes
});

test("Framer.feed() refuses a 5-byte or longer-than-needed remaining length", () => {
  const max = 268_435_460;
  assert.is(
    reasonOf(() => [...new Framer(max).feed(bytes("30 80 80 80 80 01"))]),
    "varint_too_long",
  );
  assert.is(reasonOf(() => [...new Framer(max).feed(bytes("d0 80 00"))]), "varint_not_minimal");
  // one byte at a time, too
  const f = new Framer(max);
  for (const b of bytes("30 80 80 80")) assert.is([...f.feed(new Uint8Array([b]))].length, 0);
  assert.is(reasonOf(() => [...f.feed(bytes("80"))]), "varint_too_long");
});

test("Framer.feed() yields packets before the chunk's bad header, then refuses", () => {
  const f = new Framer(64);
  const got: string[] = [];
  const why = reasonOf(() => {
    for (const p of f.feed(bytes("d0 00 d0 00 30 7f"))) got.push(hex(p));
  });
  assert.equal(got, ["d0 00", "d0 00"]);
  assert.is(why, "packet_too_large");
});

/** Runs `f`; anything thrown but MqttError `protocol` fails, with what reproduces it. */
function onlyProtocolErrors(f: () => void, repro: string): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (!(e instanceof MqttError) || e.code !== "protocol" || e.reason === undefined) {
      assert.unreachable(`${repro} threw ${e instanceof Error ? e.stack : e}`);
    }
    return false;
  }
}

/** First bytes with valid flags: CONNECT, CONNACK, PUBLISH (3 kinds), PUBACK, SUBSCRIBE... */
const FIRST = [0x10, 0x20, 0x30, 0x32, 0x39, 0x40, 0x82, 0x90, 0xc0, 0xd0, 0xe0];

test("decodePacket() fuzzed with random bytes throws only protocol errors", () => {
  const rand = prng(0x5eed);
  let decoded = 0;
  for (let n = 0; n < 4000; n++) {
    const len = Math.floor(rand() * 40);
    const b = new Uint8Array(2 + len);
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
    if (rand() < 0.8) b[1] = len; // mostly a consistent remaining length, to reach the fields
    if (rand() < 0.7) b[0] = FIRST[Math.floor(rand() * FIRST.length)]!; // and a valid type
    if (rand() < 0.6 && len >= 2) { // and a first field that fits
      b[2] = 0;
      b[3] = Math.floor(rand() * len);
      for (let i = 4; i < 4 + b[3]! && i < b.length; i++) b[i] = 0x61 + (b[i]! % 26);
    }
    const version: Version = rand() < 0.5 ? 4 : 5;
    if (onlyProtocolErrors(() => decodePacket(b, version), `seed 0x5eed case ${n} ${hex(b)}`)) {
      decoded++;
    }
  }
  assert.ok(decoded > 50, `${decoded} random packets decoded`);
});

const SEEDS: [string, Version][] = [
  [
    "10 2a 00 04 4d 51 54 54 05 ee 00 3c 05 27 00 00 04 00 00 02 63 31 05 02 00 00 00 0a 00 03" +
    " 77 2f 74 00 03 62 79 65 00 01 75 00 01 70",
    5,
  ],
  ["20 18 00 00 15 12 00 02 61 62 13 00 0f 21 00 14 22 00 0a 25 00 27 00 00 08 00", 5],
  [hex(STREAM[2]!), 5],
  ["40 09 00 0a 87 05 1f 00 02 6e 6f", 5],
  ["82 09 00 01 00 00 03 61 2f 23 2d", 5],
  ["90 04 00 01 00 01", 5],
  ["e0 08 8b 06 1f 00 03 62 79 65", 5],
  [
    "10 1e 00 04 4d 51 54 54 04 ee 00 3c 00 02 63 31 00 03 77 2f 74 00 03 62 79 65 00 01 75 00 01 70",
    4,
  ],
];

test("decodePacket() fuzzed by mutating valid packets throws only protocol errors", () => {
  const rand = prng(0xc0ffee);
  let refused = 0;
  let decoded = 0;
  for (let n = 0; n < 6000; n++) {
    const [h, version] = SEEDS[n % SEEDS.length]!;
    const b = bytes(h);
    const mutations = 1 + Math.floor(rand() * 3);
    for (let m = 0; m < mutations; m++) {
      const at = 2 + Math.floor(rand() * (b.length - 2)); // keep the remaining length right
      b[at] = rand() < 0.5 ? Math.floor(rand() * 256) : b[at]! ^ (1 << Math.floor(rand() * 8));
    }
    let p: Packet | undefined;
    const ok = onlyProtocolErrors(() => (p = decodePacket(b, version)), `case ${n} ${hex(b)}`);
    if (ok) {
      decoded++;
      // Whatever decodes encodes again without throwing anything unexpected.
      onlyProtocolErrors(() => encodePacket(p!, version), `re-encode ${n}`);
    } else refused++;
  }
  assert.ok(refused > 1000 && decoded > 500, `${refused} refused, ${decoded} decoded`);
});

test("Framer and decodePacket() fuzzed with a random stream throw only protocol errors", () => {
  const rand = prng(42);
  for (let n = 0; n < 300; n++) {
    const f = new Framer(128 + Math.floor(rand() * 1024));
    const stream = new Uint8Array(512);
    for (let i = 0; i < stream.length; i++) stream[i] = Math.floor(rand() * 256);
    onlyProtocolErrors(() => {
      for (let i = 0; i < stream.length;) {
        const size = 1 + Math.floor(rand() * 64);
        for (const p of f.feed(stream.subarray(i, i + size))) decodePacket(p, 5);
        i += size;
      }
    }, `stream seed 42 case ${n}`);
  }
});

test.run();
