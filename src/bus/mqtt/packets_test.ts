/**
 * Packets against byte vectors written by hand from the MQTT 5 and 3.1.1 specifications (each
 * field commented), round trips, every truncation, and each kind of malformed packet refused
 * with its named reason.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MqttError } from "./errors.ts";
import {
  decodePacket,
  encodePacket,
  type Packet,
  publishIdOffset,
  setPublishId,
  type Version,
} from "./packets.ts";
import { bytes, hex, text } from "../../../test/support/mqtt.ts";

interface Vector {
  name: string;
  version: Version;
  hex: string;
  packet: Packet;
}

const VECTORS: Vector[] = [
  {
    name: "CONNECT v5 with will, user name, password and properties",
    version: 5,
    hex: "10 2a" + // CONNECT, remaining length 42
      "00 04 4d 51 54 54" + // protocol name "MQTT"
      "05" + // protocol level 5
      "ee" + // flags: user name, password, will retain, will QoS 1, will, clean start
      "00 3c" + // keepalive 60 s
      "05 27 00 00 04 00" + // properties (5): Maximum Packet Size 1024
      "00 02 63 31" + // client identifier "c1"
      "05 02 00 00 00 0a" + // will properties (5): Message Expiry Interval 10
      "00 03 77 2f 74" + // will topic "w/t"
      "00 03 62 79 65" + // will payload "bye"
      "00 01 75" + // user name "u"
      "00 01 70", // password "p"
    packet: {
      type: "connect",
      protocolVersion: 5,
      clientId: "c1",
      cleanStart: true,
      keepalive: 60,
      username: "u",
      password: text("p"),
      will: {
        topic: "w/t",
        payload: text("bye"),
        qos: 1,
        retain: true,
        properties: { messageExpiryInterval: 10 },
      },
      properties: { maximumPacketSize: 1024 },
    },
  },
  {
    name: "CONNECT v4 with will, user name and password",
    version: 4,
    hex: "10 1e" + // remaining length 30
      "00 04 4d 51 54 54 04" + // "MQTT", level 4
      "ee 00 3c" + // same flags, keepalive 60
      "00 02 63 31" + // "c1"
      "00 03 77 2f 74 00 03 62 79 65" + // will topic "w/t", payload "bye"
      "00 01 75 00 01 70", // "u", "p"
    packet: {
      type: "connect",
      protocolVersion: 4,
      clientId: "c1",
      cleanStart: true,
      keepalive: 60,
      username: "u",
      password: text("p"),
      will: { topic: "w/t", payload: text("bye"), qos: 1, retain: true, properties: {} },
      properties: {},
    },
  },
  {
    name: "CONNECT v4, empty client identifier, no keepalive",
    version: 4,
    hex: "10 0c 00 04 4d 51 54 54 04 02 00 00 00 00",
    packet: {
      type: "connect",
      protocolVersion: 4,
      clientId: "",
      cleanStart: true,
      keepalive: 0,
      properties: {},
    },
  },
  {
    name: "CONNACK v5 with properties",
    version: 5,
    hex: "20 18" + // CONNACK, remaining length 24
      "00 00" + // no session, reason 0
      "15" + // properties (21):
      "12 00 02 61 62" + // Assigned Client Identifier "ab"
      "13 00 0f" + // Server Keep Alive 15
      "21 00 14" + // Receive Maximum 20
      "22 00 0a" + // Topic Alias Maximum 10
      "25 00" + // Retain Available 0
      "27 00 00 08 00", // Maximum Packet Size 2048
    packet: {
      type: "connack",
      sessionPresent: false,
      reasonCode: 0,
      properties: {
        assignedClientIdentifier: "ab",
        serverKeepAlive: 15,
        receiveMaximum: 20,
        topicAliasMaximum: 10,
        retainAvailable: false,
        maximumPacketSize: 2048,
      },
    },
  },
  {
    name: "CONNACK v5 refused 0x86",
    version: 5,
    hex: "20 03 00 86 00",
    packet: { type: "connack", sessionPresent: false, reasonCode: 0x86, properties: {} },
  },
  {
    name: "CONNACK v4 session present",
    version: 4,
    hex: "20 02 01 00",
    packet: { type: "connack", sessionPresent: true, reasonCode: 0, properties: {} },
  },
  {
    name: "CONNACK v4 refused 5",
    version: 4,
    hex: "20 02 00 05",
    packet: { type: "connack", sessionPresent: false, reasonCode: 5, properties: {} },
  },
  {
    name: "PUBLISH v5 QoS 1 retained with properties",
    version: 5,
    hex: "33 25" + // PUBLISH QoS 1 retain, remaining length 37
      "00 03 61 2f 62" + // topic "a/b"
      "00 0a" + // packet identifier 10
      "1b" + // properties (27):
      "01 01" + // Payload Format Indicator 1
      "02 00 00 0e 10" + // Message Expiry Interval 3600
      "03 00 01 74" + // Content Type "t"
      "08 00 01 72" + // Response Topic "r"
      "09 00 02 c0 de" + // Correlation Data c0 de
      "26 00 01 6b 00 01 76" + // User Property k=v
      "68 69", // payload "hi"
    packet: {
      type: "publish",
      topic: "a/b",
      payload: text("hi"),
      qos: 1,
      retain: true,
      dup: false,
      packetId: 10,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 3600,
        contentType: "t",
        responseTopic: "r",
        correlationData: bytes("c0 de"),
        userProperties: [["k", "v"]],
      },
    },
  },
  {
    name: "PUBLISH v5 QoS 0, no properties",
    version: 5,
    hex: "30 08 00 03 61 2f 62 00 68 69",
    packet: {
      type: "publish",
      topic: "a/b",
      payload: text("hi"),
      qos: 0,
      retain: false,
      dup: false,
      packetId: 0,
      properties: {},
    },
  },
  {
    name: "PUBLISH v4 QoS 1 DUP, empty payload",
    version: 4,
    hex: "3a 07 00 03 61 2f 62 12 34",
    packet: {
      type: "publish",
      topic: "a/b",
      payload: new Uint8Array(0),
      qos: 1,
      retain: false,
      dup: true,
      packetId: 0x1234,
      properties: {},
    },
  },
  {
    name: "PUBACK v4",
    version: 4,
    hex: "40 02 00 0a",
    packet: { type: "puback", packetId: 10, reasonCode: 0, properties: {} },
  },
  {
    name: "PUBACK v5 short form (success)",
    version: 5,
    hex: "40 02 00 0a",
    packet: { type: "puback", packetId: 10, reasonCode: 0, properties: {} },
  },
  {
    name: "PUBACK v5 reason code only",
    version: 5,
    hex: "40 03 00 0a 87",
    packet: { type: "puback", packetId: 10, reasonCode: 0x87, properties: {} },
  },
  {
    name: "PUBACK v5 long form with a reason string",
    version: 5,
    hex: "40 09 00 0a 87 05 1f 00 02 6e 6f", // id 10, 0x87, properties (5): Reason String "no"
    packet: { type: "puback", packetId: 10, reasonCode: 0x87, properties: { reasonString: "no" } },
  },
  {
    name: "SUBSCRIBE v5 with every option",
    version: 5,
    hex: "82 09 00 01 00 00 03 61 2f 23 2d", // id 1, no properties, "a/#", options 0x2d
    packet: {
      type: "subscribe",
      packetId: 1,
      subscriptions: [{
        filter: "a/#",
        qos: 1,
        noLocal: true,
        retainAsPublished: true,
        retainHandling: 2,
      }],
      properties: {},
    },
  },
  {
    name: "SUBSCRIBE v4",
    version: 4,
    hex: "82 08 00 01 00 03 61 2f 23 01",
    packet: {
      type: "subscribe",
      packetId: 1,
      subscriptions: [{
        filter: "a/#",
        qos: 1,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: {},
    },
  },
  {
    name: "SUBACK v5",
    version: 5,
    hex: "90 04 00 01 00 01",
    packet: { type: "suback", packetId: 1, reasonCodes: [1], properties: {} },
  },
  {
    name: "SUBACK v5 refused",
    version: 5,
    hex: "90 04 00 01 00 87",
    packet: { type: "suback", packetId: 1, reasonCodes: [0x87], properties: {} },
  },
  {
    name: "SUBACK v4",
    version: 4,
    hex: "90 04 00 01 01 80",
    packet: { type: "suback", packetId: 1, reasonCodes: [1, 0x80], properties: {} },
  },
  { name: "PINGREQ", version: 4, hex: "c0 00", packet: { type: "pingreq" } },
  { name: "PINGRESP", version: 5, hex: "d0 00", packet: { type: "pingresp" } },
  {
    name: "DISCONNECT v4",
    version: 4,
    hex: "e0 00",
    packet: { type: "disconnect", reasonCode: 0, properties: {} },
  },
  {
    name: "DISCONNECT v5 normal (short form)",
    version: 5,
    hex: "e0 00",
    packet: { type: "disconnect", reasonCode: 0, properties: {} },
  },
  {
    name: "DISCONNECT v5 with will message",
    version: 5,
    hex: "e0 01 04",
    packet: { type: "disconnect", reasonCode: 4, properties: {} },
  },
  {
    name: "DISCONNECT v5 server shutting down, with a reason string",
    version: 5,
    hex: "e0 08 8b 06 1f 00 03 62 79 65",
    packet: { type: "disconnect", reasonCode: 0x8b, properties: { reasonString: "bye" } },
  },
];

test("encodePacket() writes each hand-written vector", () => {
  for (const v of VECTORS) {
    assert.is(hex(encodePacket(v.packet, v.version)), hex(bytes(v.hex)), v.name);
  }
});

test("decodePacket() reads each hand-written vector", () => {
  for (const v of VECTORS) assert.equal(decodePacket(bytes(v.hex), v.version), v.packet, v.name);
});

test("decodePacket() reads the forms encodePacket() never writes", () => {
  // PUBACK and DISCONNECT v5 with a reason code and an empty property list.
  assert.equal(decodePacket(bytes("40 04 00 0a 10 00"), 5), {
    type: "puback",
    packetId: 10,
    reasonCode: 0x10,
    properties: {},
  });
  assert.equal(decodePacket(bytes("e0 02 00 00"), 5), {
    type: "disconnect",
    reasonCode: 0,
    properties: {},
  });
});

test("decodePacket() reads an MQTT 3.1.1 broker's refusal of an MQTT 5 CONNECT", () => {
  assert.equal(decodePacket(bytes("20 02 00 01"), 5), {
    type: "connack",
    sessionPresent: false,
    reasonCode: 1,
    properties: {},
    mqtt311Refusal: true,
  });
  assert.is(reason("20 02 00 00", 5), "truncated", "an acceptance is no such thing");
  assert.is(reason("20 02 00 06", 5), "truncated");
  assert.is(reason("20 02 01 01", 5), "truncated");
});

test("decodePacket(encodePacket(p)) is p, for both versions where the packet allows", () => {
  for (const v of VECTORS) {
    const back = decodePacket(encodePacket(v.packet, v.version), v.version);
    assert.equal(back, v.packet, v.name);
  }
  const big: Packet = {
    type: "publish",
    topic: "t/\u00e9/\u{1F600}/\ufeff",
    payload: new Uint8Array(70_000).fill(7),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 65_535,
    properties: { userProperties: [["", ""], ["\u00e9", "x".repeat(1000)]] },
  };
  assert.equal(decodePacket(encodePacket(big, 5), 5), big);
});

test("decodePacket() refuses every truncation of every vector", () => {
  for (const v of VECTORS) {
    const b = bytes(v.hex);
    for (let i = 0; i < b.length; i++) {
      try {
        decodePacket(b.subarray(0, i), v.version);
        assert.unreachable(`${v.name} cut at ${i} decoded`);
      } catch (e) {
        assert.instance(e, MqttError, `${v.name} cut at ${i}: ${e}`);
        assert.is((e as MqttError).code, "protocol");
      }
    }
  }
});

test("decodePacket() refuses or reads, never crashes on, every shortened body", () => {
  // The remaining length is made consistent: only the fields' own bounds can catch it.
  let refused = 0;
  for (const v of VECTORS) {
    const b = bytes(v.hex);
    const start = b[1]! < 128 ? 2 : 3;
    for (let i = 0; i < b.length - start; i++) {
      const cut = new Uint8Array(2 + i);
      cut[0] = b[0]!;
      cut[1] = i;
      cut.set(b.subarray(start, start + i), 2);
      try {
        decodePacket(cut, v.version);
      } catch (e) {
        assert.instance(e, MqttError, `${v.name} body cut at ${i}: ${e}`);
        refused++;
      }
    }
  }
  assert.ok(refused > 150, `${refused} refused`);
});

function reason(h: string, version: Version): string | undefined {
  try {
    decodePacket(bytes(h), version);
  } catch (e) {
    assert.instance(e, MqttError);
    assert.is((e as MqttError).code, "protocol");
    return (e as MqttError).reason;
  }
  return "decoded";
}

test("decodePacket() names what is wrong with each malformed packet", () => {
  const cases: [string, Version, string, string][] = [
    ["30 ff ff ff ff 01", 5, "varint_too_long", "remaining length of 5 bytes"],
    ["30 0b 00 01 61 ff ff ff ff 01 00 00 00", 5, "varint_too_long", "property length, 5 bytes"],
    ["d0 80 00", 5, "varint_not_minimal", "remaining length 0 in 2 bytes"],
    ["30 05 00 03 61 ff 62", 4, "invalid_utf8", "topic with 0xff"],
    ["30 06 00 04 61 ed a0 80", 4, "invalid_utf8", "topic with a surrogate"],
    ["30 05 00 03 61 00 62", 4, "null_character", "topic with U+0000"],
    ["30 05 00 03 61 2f 2b", 4, "invalid_topic", "topic with +"],
    ["30 03 00 01 23", 5, "invalid_topic", "topic #"],
    ["30 02 00 00", 4, "invalid_topic", "v4 empty topic"],
    ["c1 00", 4, "reserved_flags", "PINGREQ flags"],
    ["d8 00", 5, "reserved_flags", "PINGRESP flags"],
    ["80 08 00 01 00 03 61 2f 23 01", 4, "reserved_flags", "SUBSCRIBE without 0b0010"],
    ["42 02 00 0a", 4, "reserved_flags", "PUBACK flags"],
    ["38 07 00 03 61 2f 62 68 69", 4, "reserved_flags", "DUP at QoS 0"],
    ["36 09 00 03 61 2f 62 00 01 68 69", 4, "invalid_qos", "QoS 3"],
    ["20 02 02 00", 4, "reserved_flags", "CONNACK flags"],
    ["20 02 01 05", 4, "session_present", "session present on refusal"],
    ["20 02 00 06", 4, "invalid_reason_code", "v4 CONNACK 6"],
    ["20 03 00 01 00", 5, "invalid_reason_code", "v5 CONNACK 0x01"],
    ["40 03 00 0a 05", 5, "invalid_reason_code", "PUBACK 0x05"],
    ["90 04 00 01 00 03", 5, "invalid_reason_code", "SUBACK 0x03"],
    ["e0 01 05", 5, "invalid_reason_code", "DISCONNECT 0x05"],
    ["40 02 00 00", 4, "invalid_packet_id", "PUBACK id 0"],
    ["32 07 00 03 61 2f 62 00 00", 4, "invalid_packet_id", "PUBLISH id 0"],
    ["90 02 00 01", 4, "invalid_length", "SUBACK without codes"],
    ["90 03 00 01 00", 5, "invalid_length", "SUBACK v5 without codes"],
    ["00 00", 5, "reserved_packet_type", "type 0"],
    ["f0 00", 4, "reserved_packet_type", "type 15 in v4"],
    ["f0 00", 5, "unexpected_packet", "AUTH"],
    ["50 02 00 01", 5, "unexpected_packet", "PUBREC"],
    ["62 02 00 01", 5, "unexpected_packet", "PUBREL"],
    ["b0 02 00 01", 5, "unexpected_packet", "UNSUBACK"],
    ["e0 00", 4, "decoded", "v4 DISCONNECT decodes (the client refuses it)"],
    ["d0 01", 5, "length_mismatch", "remaining length beyond the bytes"],
    ["d0 00 00", 5, "length_mismatch", "a byte after the packet"],
    ["20 03 00 00 00", 4, "trailing_bytes", "v4 CONNACK of 3 bytes"],
    ["40 03 00 0a 00", 4, "trailing_bytes", "v4 PUBACK with a reason code"],
    ["40 05 00 0a 00 00 00", 5, "trailing_bytes", "PUBACK after its properties"],
    ["30 0e 00 03 61 2f 62 0a 02 00 00 00 01 02 00 00", 5, "truncated", "props past the packet"],
    [
      "30 10 00 03 61 2f 62 0a 02 00 00 00 01 02 00 00 00 02",
      5,
      "duplicate_property",
      "Message Expiry Interval twice",
    ],
    ["30 08 00 03 61 2f 62 02 24 01", 5, "property_not_allowed", "Maximum QoS in PUBLISH"],
    ["20 06 00 00 03 23 00 01", 5, "property_not_allowed", "Topic Alias in CONNACK"],
    ["20 05 00 00 02 7f 00", 5, "unknown_property", "property 0x7f"],
    ["20 06 00 00 03 21 00 00", 5, "invalid_property_value", "Receive Maximum 0"],
    ["10 0c 00 04 4d 51 54 54 03 02 00 00 00 00", 4, "invalid_protocol", "CONNECT level 3"],
    ["10 0c 00 04 4d 51 54 54 04 03 00 00 00 00", 4, "reserved_flags", "CONNECT reserved bit"],
    ["10 0c 00 04 4d 51 54 54 04 42 00 00 00 00", 4, "reserved_flags", "v4 password alone"],
    ["10 0c 00 04 4d 51 54 54 04 1e 00 00 00 00", 4, "invalid_qos", "will QoS 3"],
  ];
  for (const [h, version, why, what] of cases) {
    assert.is(reason(h, version), why, `${what} (${h})`);
  }
});

test("publishIdOffset() and setPublishId() renumber an encoded PUBLISH in place", () => {
  const p: Packet = {
    type: "publish",
    topic: "x".repeat(200),
    payload: new Uint8Array(300),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 1,
    properties: { messageExpiryInterval: 5 },
  };
  const b = encodePacket(p, 5);
  assert.is(publishIdOffset(b), 3 + 2 + 200);
  setPublishId(b, 0xbeef);
  assert.equal(decodePacket(b, 5), { ...p, packetId: 0xbeef });
});

test("encodePacket() refuses a packet MQTT cannot express", () => {
  const p: Packet = {
    type: "publish",
    topic: "t",
    payload: new Uint8Array(268_435_455),
    qos: 0,
    retain: false,
    dup: false,
    packetId: 0,
    properties: {},
  };
  try {
    encodePacket(p, 4);
    assert.unreachable("encoded");
  } catch (e) {
    assert.instance(e, MqttError);
    assert.is((e as MqttError).code, "too_large");
  }
});

test.run();
