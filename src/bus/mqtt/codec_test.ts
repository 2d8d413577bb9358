/**
 * MQTT's data representations: Variable Byte Integers (the table of MQTT 5 section 1.5.5),
 * UTF-8 strings (section 1.5.4, with its example), binary data, and properties.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeVarint, Reader, Writer } from "./codec.ts";
import { MqttError } from "./errors.ts";
import { decodeProperties, encodeProperties, type PropertyKind } from "./properties.ts";
import { bytes, hex } from "../../../test/support/mqtt.ts";

function reason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof MqttError && e.code === "protocol") return e.reason;
    throw e;
  }
  throw new Error("expected a protocol error");
}

// MQTT 5 section 1.5.5: the boundaries of each length.
const VARINTS: [number, string][] = [
  [0, "00"],
  [127, "7f"],
  [128, "80 01"],
  [16_383, "ff 7f"],
  [16_384, "80 80 01"],
  [2_097_151, "ff ff 7f"],
  [2_097_152, "80 80 80 01"],
  [268_435_455, "ff ff ff 7f"],
];

test("Writer.varint() writes the spec's boundary values", () => {
  for (const [n, h] of VARINTS) assert.is(hex(new Writer().varint(n).finish()), h, `${n}`);
});

test("decodeVarint() reads the spec's boundary values, and null when the bytes end", () => {
  for (const [n, h] of VARINTS) {
    const b = bytes(h);
    assert.equal(decodeVarint(b, 0, b.length, "x"), { value: n, length: b.length });
    assert.is(decodeVarint(b, 0, b.length - 1, "x"), null);
  }
});

test("decodeVarint() refuses a fifth byte and a longer form than needed", () => {
  const five = bytes("ff ff ff ff 01");
  assert.is(reason(() => decodeVarint(five, 0, 5, "x")), "varint_too_long");
  const fourCont = bytes("80 80 80 80");
  assert.is(reason(() => decodeVarint(fourCont, 0, 4, "x")), "varint_too_long");
  for (const h of ["80 00", "ff 80 00", "80 80 80 00"]) {
    const b = bytes(h);
    assert.is(reason(() => decodeVarint(b, 0, b.length, "x")), "varint_not_minimal", h);
  }
});

test("Writer.varint() refuses what 4 bytes cannot hold", () => {
  for (const n of [-1, 268_435_456, 1.5, NaN]) {
    assert.throws(() => new Writer().varint(n), TypeError);
  }
});

test("Writer.utf8() and Reader.utf8() agree with the spec's example A𪛔", () => {
  assert.is(hex(new Writer().utf8("A\u{2A6D4}").finish()), "00 05 41 f0 aa 9b 94");
  assert.is(new Reader(bytes("00 05 41 f0 aa 9b 94"), "T").utf8("s"), "A\u{2A6D4}");
});

test("Reader.utf8() keeps a leading BOM (MQTT-1.5.4-3)", () => {
  assert.is(new Reader(bytes("00 04 ef bb bf 61"), "T").utf8("s"), "\ufeffa");
});

test("Reader.utf8() refuses invalid UTF-8, surrogates, overlong forms and U+0000", () => {
  const cases: [string, string][] = [
    ["00 01 ff", "invalid_utf8"],
    ["00 02 c0 af", "invalid_utf8"], // overlong "/"
    ["00 03 ed a0 80", "invalid_utf8"], // U+D800
    ["00 02 e2 82", "invalid_utf8"], // cut in the middle of a character
    ["00 03 61 00 62", "null_character"],
    ["00 02 c0 80", "null_character"], // overlong NUL: refused either way
    ["00 05 61 62", "truncated"],
    ["00", "truncated"],
  ];
  for (const [h, why] of cases) {
    const r = reason(() => new Reader(bytes(h), "T").utf8("s"));
    assert.ok(r === why || (why === "null_character" && r === "invalid_utf8"), `${h}: ${r}`);
  }
});

test("Writer.utf8() refuses U+0000, a lone surrogate and more than 65535 bytes", () => {
  assert.throws(() => new Writer().utf8("a\u0000b"), TypeError);
  assert.throws(() => new Writer().utf8("a\ud800b"), TypeError);
  assert.throws(() => new Writer().utf8("é".repeat(32_768)), TypeError);
  assert.is(new Writer().utf8("a".repeat(65_535)).length, 65_537);
});

test("Reader refuses to read past the end of the packet", () => {
  const r = new Reader(bytes("01 02 03"), "T");
  assert.is(r.u16("a"), 0x0102);
  assert.is(reason(() => r.u16("b")), "truncated");
  assert.is(reason(() => new Reader(bytes("00 04 01 02"), "T").binary("b")), "truncated");
  assert.is(reason(() => new Reader(bytes("01 02 03"), "T").u32("c")), "truncated");
  // A section (properties) cannot read past its own length, even inside the packet.
  const outer = new Reader(bytes("01 aa bb"), "T");
  const inner = outer.sub(outer.u8("len"), "section");
  assert.is(inner.u8("x"), 0xaa);
  assert.is(reason(() => inner.u8("y")), "truncated");
});

function props(h: string, kind: PropertyKind) {
  return decodeProperties(new Reader(bytes(h), kind.toUpperCase()), kind);
}

test("decodeProperties() reads each type", () => {
  const p = props(
    "19 01 01 02 00 00 0e 10 26 00 01 6b 00 01 76 26 00 01 6b 00 01 77 09 00 01 ff",
    "publish",
  );
  assert.equal(p, {
    payloadFormatIndicator: 1,
    messageExpiryInterval: 3600,
    userProperties: [["k", "v"], ["k", "w"]],
    correlationData: new Uint8Array([0xff]),
  });
});

test("decodeProperties() names what is wrong", () => {
  const cases: [string, PropertyKind, string][] = [
    ["0a 02 00 00 00 01 02 00 00 00 02", "publish", "duplicate_property"],
    ["02 24 01", "publish", "property_not_allowed"], // Maximum QoS in a PUBLISH
    ["03 23 00 01", "connack", "property_not_allowed"], // Topic Alias in a CONNACK
    ["03 11 00 00", "puback", "property_not_allowed"],
    ["02 7f 00", "publish", "unknown_property"],
    ["02 00 00", "publish", "unknown_property"],
    ["03 21 00 00", "connack", "invalid_property_value"], // Receive Maximum 0
    ["02 24 02", "connack", "invalid_property_value"], // Maximum QoS 2
    ["02 25 07", "connack", "invalid_property_value"], // Retain Available 7
    ["05 27 00 00 00 00", "connack", "invalid_property_value"], // Maximum Packet Size 0
    ["02 0b 00", "publish", "invalid_property_value"], // Subscription Identifier 0
    ["04 08 00 01 23", "will", "invalid_property_value"], // Response Topic "#"
    ["02 01 02", "will", "invalid_property_value"], // Payload Format Indicator 2
    ["04 01 02 01 01", "publish", "duplicate_property"], // even when the first is left out
    ["04 0b 01 0b 02", "subscribe", "duplicate_property"],
    ["04 03 00 01 ff", "publish", "invalid_utf8"],
    ["04 03 00 01 00", "publish", "null_character"],
    ["04 03 00 05 61", "publish", "truncated"],
    ["03 02 00 00 00 00", "publish", "truncated"], // the value runs past the property length
    ["ff ff ff ff 01", "publish", "varint_too_long"],
    ["80 00", "publish", "varint_not_minimal"],
    ["03 81 00 00", "publish", "varint_not_minimal"], // identifier in two bytes
    ["09 02 00 00", "publish", "truncated"], // length beyond the packet
  ];
  for (const [h, kind, why] of cases) assert.is(reason(() => props(h, kind)), why, h);
});

test("decodeProperties() leaves out a relayed PUBLISH's invalid Response Topic and format", () => {
  // mosquitto 2.0 relays both from any client: they must not cut linkd's connection.
  assert.equal(props("0d 08 00 03 61 2b 62 01 02 02 00 00 00 07", "publish"), {
    messageExpiryInterval: 7,
  });
  assert.equal(props("04 08 00 01 23", "publish"), {});
});

test("decodeProperties() allows several Subscription Identifiers in a PUBLISH", () => {
  assert.equal(props("04 0b 01 0b 02", "publish"), { subscriptionIdentifiers: [1, 2] });
});

test("encodeProperties() writes in identifier order and refuses misplaced properties", () => {
  const w = new Writer();
  encodeProperties(w, {
    userProperties: [["a", "b"]],
    messageExpiryInterval: 1,
    payloadFormatIndicator: 0,
  }, "publish");
  assert.is(hex(w.finish()), "0e 01 00 02 00 00 00 01 26 00 01 61 00 01 62");
  assert.throws(() => encodeProperties(new Writer(), { maximumQoS: 1 }, "publish"), TypeError);
  assert.throws(
    () => encodeProperties(new Writer(), { messageExpiryInterval: 2 ** 32 }, "publish"),
    TypeError,
  );
  assert.throws(() => encodeProperties(new Writer(), { receiveMaximum: 0 }, "connect"), TypeError);
});

test.run();
