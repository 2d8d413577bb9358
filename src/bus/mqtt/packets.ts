/**
 * The packets this client sends and receives, MQTT 3.1.1 (version 4) and MQTT 5: CONNECT,
 * CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT. Both directions
 * are encoded and decoded (the tests' scripted broker uses the same code); the client decides
 * which packets it accepts from a broker.
 *
 * `decodePacket` takes one whole packet (as the framer cuts it) and checks every field: the
 * fixed header's flags, the Remaining Length against the bytes, lengths inside the packet,
 * reason codes, properties; anything wrong is an MqttError `protocol` with a named reason.
 * Other packet types (PUBREC, PUBREL, PUBCOMP, UNSUBSCRIBE, UNSUBACK, AUTH) are refused as
 * unexpected: this client never publishes or subscribes at QoS 2, never unsubscribes, and never
 * asks for enhanced authentication.
 */
import { decodeVarint, Reader, VARINT_MAX, Writer } from "./codec.ts";
import { MqttError, protocolError } from "./errors.ts";
import { decodeProperties, encodeProperties, type Properties } from "./properties.ts";

export type Version = 4 | 5;
export type QoS = 0 | 1 | 2;

export interface WillPacket {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  properties: Properties;
}

export interface ConnectPacket {
  type: "connect";
  protocolVersion: Version;
  clientId: string;
  cleanStart: boolean;
  keepalive: number;
  username?: string;
  password?: Uint8Array;
  will?: WillPacket;
  properties: Properties;
}

export interface ConnackPacket {
  type: "connack";
  sessionPresent: boolean;
  reasonCode: number;
  properties: Properties;
  /**
   * Read as MQTT 5 but sent by an MQTT 3.1.1-only broker: its two-byte CONNACK refusing the
   * connection (`reasonCode` is its return code, 1..5, usually 1 unacceptable protocol version).
   */
  mqtt311Refusal?: true;
}

export interface PublishPacket {
  type: "publish";
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** 0 for QoS 0. */
  packetId: number;
  properties: Properties;
}

export interface PubackPacket {
  type: "puback";
  packetId: number;
  reasonCode: number;
  properties: Properties;
}

export interface Subscription {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: "subscribe";
  packetId: number;
  subscriptions: Subscription[];
  properties: Properties;
}

export interface SubackPacket {
  type: "suback";
  packetId: number;
  reasonCodes: number[];
  properties: Properties;
}

export interface PingreqPacket {
  type: "pingreq";
}

export interface PingrespPacket {
  type: "pingresp";
}

export interface DisconnectPacket {
  type: "disconnect";
  reasonCode: number;
  properties: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | SubscribePacket
  | SubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket;

/** The largest packet MQTT can express: 1 + 4 bytes of fixed header + VARINT_MAX. */
export const PACKET_MAX = 1 + 4 + VARINT_MAX;

// ── encoding ────────────────────────────────────────────────────────────────────────────────

/** The whole packet: fixed header, `body`, then `payload` (copied once). */
function frame(first: number, body: Uint8Array, payload?: Uint8Array): Uint8Array {
  const remaining = body.length + (payload?.length ?? 0);
  if (remaining > VARINT_MAX) {
    throw new MqttError("too_large", `Cannot encode a packet of ${remaining} bytes: MQTT's limit`);
  }
  const head = new Writer(5).u8(first).varint(remaining).finish();
  const out = new Uint8Array(head.length + remaining);
  out.set(head);
  out.set(body, head.length);
  if (payload) out.set(payload, head.length + body.length);
  return out;
}

function flags(qos: QoS, retain: boolean, dup: boolean): number {
  return (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
}

/** Encodes `p` for protocol `version` (CONNECT uses its own `protocolVersion`). */
export function encodePacket(p: Packet, version: Version): Uint8Array {
  const v5 = version === 5;
  const w = new Writer(64);
  switch (p.type) {
    case "connect": {
      const cv5 = p.protocolVersion === 5;
      w.utf8("MQTT").u8(p.protocolVersion);
      let f = p.cleanStart ? 0x02 : 0;
      if (p.will) f |= 0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
      if (p.password !== undefined) f |= 0x40;
      if (p.username !== undefined) f |= 0x80;
      w.u8(f).u16(p.keepalive, "keepalive");
      if (cv5) encodeProperties(w, p.properties, "connect");
      w.utf8(p.clientId, "client identifier");
      if (p.will) {
        if (cv5) encodeProperties(w, p.will.properties, "will");
        w.utf8(p.will.topic, "will topic").binary(p.will.payload, "will payload");
      }
      if (p.username !== undefined) w.utf8(p.username, "user name");
      if (p.password !== undefined) w.binary(p.password, "password");
      return frame(0x10, w.finish());
    }
    case "connack":
      w.u8(p.sessionPresent ? 1 : 0).u8(p.reasonCode);
      if (v5) encodeProperties(w, p.properties, "connack");
      return frame(0x20, w.finish());
    case "publish":
      w.utf8(p.topic, "topic");
      if (p.qos > 0) w.u16(p.packetId, "packet identifier");
      if (v5) encodeProperties(w, p.properties, "publish");
      return frame(0x30 | flags(p.qos, p.retain, p.dup), w.finish(), p.payload);
    case "puback":
      w.u16(p.packetId, "packet identifier");
      if (v5 && (p.reasonCode !== 0 || hasAny(p.properties))) {
        w.u8(p.reasonCode);
        if (hasAny(p.properties)) encodeProperties(w, p.properties, "puback");
      }
      return frame(0x40, w.finish());
    case "subscribe":
      w.u16(p.packetId, "packet identifier");
      if (v5) encodeProperties(w, p.properties, "subscribe");
      for (const s of p.subscriptions) {
        w.utf8(s.filter, "topic filter");
        w.u8(
          v5
            ? s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | (s.retainHandling << 4)
            : s.qos,
        );
      }
      return frame(0x82, w.finish());
    case "suback":
      w.u16(p.packetId, "packet identifier");
      if (v5) encodeProperties(w, p.properties, "suback");
      for (const rc of p.reasonCodes) w.u8(rc);
      return frame(0x90, w.finish());
    case "pingreq":
      return frame(0xc0, w.finish());
    case "pingresp":
      return frame(0xd0, w.finish());
    case "disconnect":
      if (v5 && (p.reasonCode !== 0 || hasAny(p.properties))) {
        w.u8(p.reasonCode);
        if (hasAny(p.properties)) encodeProperties(w, p.properties, "disconnect");
      }
      return frame(0xe0, w.finish());
  }
}

function hasAny(p: Properties): boolean {
  for (const k in p) if ((p as Record<string, unknown>)[k] !== undefined) return true;
  return false;
}

/** Where the packet identifier sits in an encoded QoS 1 PUBLISH (to renumber it in place). */
export function publishIdOffset(packet: Uint8Array): number {
  let i = 1;
  while (packet[i]! & 0x80) i++;
  i++;
  return i + 2 + ((packet[i]! << 8) | packet[i + 1]!);
}

/** Sets the packet identifier of an encoded QoS 1 PUBLISH. */
export function setPublishId(packet: Uint8Array, id: number): void {
  const at = publishIdOffset(packet);
  packet[at] = id >>> 8;
  packet[at + 1] = id & 0xff;
}

// ── decoding ────────────────────────────────────────────────────────────────────────────────

const NAMES = [
  "reserved",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "AUTH",
];

/** The name of packet type `type` (0..15), for messages. */
export function packetName(type: number): string {
  return NAMES[type] ?? "reserved";
}

/**
 * Decodes one whole packet. `version` is the connection's protocol version (a CONNECT
 * carries its own). Throws MqttError `protocol` for anything malformed.
 */
export function decodePacket(packet: Uint8Array, version: Version): Packet {
  if (packet.length === 0) throw protocolError("truncated", "Cannot decode a packet: empty");
  const first = packet[0]!;
  const type = first >> 4;
  const f = first & 0x0f;
  const name = packetName(type);
  const len = decodeVarint(packet, 1, packet.length, `${name} remaining length`);
  if (len === null) {
    throw protocolError("truncated", `Cannot decode ${name}: remaining length is truncated`);
  }
  const start = 1 + len.length;
  if (packet.length - start !== len.value) {
    throw protocolError(
      "length_mismatch",
      `Cannot decode ${name}: remaining length ${len.value}, ${packet.length - start} bytes`,
    );
  }
  if (type === 0 || (type === 15 && version === 4)) {
    throw protocolError("reserved_packet_type", `Cannot decode a packet of reserved type ${type}`);
  }
  const expected = type === 3 ? f : type === 6 || type === 8 || type === 10 ? 2 : 0;
  if (type !== 3 && f !== expected) {
    throw protocolError("reserved_flags", `Cannot decode ${name}: reserved flags ${f}`);
  }
  const r = new Reader(packet, name, start);
  const v5 = version === 5;
  switch (type) {
    case 1:
      return decodeConnect(r);
    case 2:
      return decodeConnack(r, v5);
    case 3:
      return decodePublish(r, f, v5);
    case 4:
      return decodePuback(r, v5);
    case 8:
      return decodeSubscribe(r, v5);
    case 9:
      return decodeSuback(r, v5);
    case 12:
    case 13:
      r.end();
      return { type: type === 12 ? "pingreq" : "pingresp" };
    case 14:
      if (!v5) {
        r.end();
        return { type: "disconnect", reasonCode: 0, properties: {} };
      }
      return decodeDisconnect(r);
    default:
      throw protocolError("unexpected_packet", `Cannot accept ${name}: not supported`);
  }
}

function packetId(r: Reader): number {
  const id = r.u16("packet identifier");
  if (id === 0) throw protocolError("invalid_packet_id", `Cannot decode ${r.packet}: id 0`);
  return id;
}

/**
 * A reason code from the packet kind's list. On MQTT 5 any failure code (0x80 and up) is taken
 * too: brokers send codes the spec does not list for the kind (mosquitto 2.0 answers a publish
 * over its message_size_limit with PUBACK 0x95), and ending the connection for that would make
 * a retained publish replayed on every reconnect flap the bus for ever. The failure still
 * reaches the caller; only an unknown success code is malformed.
 */
function reasonCode(r: Reader, allowed: readonly number[], v5 = true): number {
  const rc = r.u8("reason code");
  if (!allowed.includes(rc) && !(v5 && rc >= 0x80)) {
    throw protocolError(
      "invalid_reason_code",
      `Cannot decode ${r.packet}: reason code 0x${rc.toString(16).padStart(2, "0")}`,
    );
  }
  return rc;
}

function decodeConnect(r: Reader): ConnectPacket {
  const name = r.utf8("protocol name");
  const level = r.u8("protocol level");
  if (name !== "MQTT" || (level !== 4 && level !== 5)) {
    throw protocolError("invalid_protocol", `Cannot decode CONNECT: protocol level ${level}`);
  }
  const v5 = level === 5;
  const f = r.u8("connect flags");
  if (f & 1) throw protocolError("reserved_flags", "Cannot decode CONNECT: reserved flag set");
  const willFlag = (f & 0x04) !== 0;
  const willQos = (f >> 3) & 3;
  const willRetain = (f & 0x20) !== 0;
  if (willQos === 3) throw protocolError("invalid_qos", "Cannot decode CONNECT: will QoS 3");
  if (!willFlag && (willQos !== 0 || willRetain)) {
    throw protocolError("reserved_flags", "Cannot decode CONNECT: will flags without a will");
  }
  if (!v5 && (f & 0x40) && !(f & 0x80)) {
    throw protocolError("reserved_flags", "Cannot decode CONNECT: password without user name");
  }
  const keepalive = r.u16("keepalive");
  const properties = v5 ? decodeProperties(r, "connect") : {};
  const p: ConnectPacket = {
    type: "connect",
    protocolVersion: level as Version,
    clientId: r.utf8("client identifier"),
    cleanStart: (f & 0x02) !== 0,
    keepalive,
    properties,
  };
  if (willFlag) {
    const wp = v5 ? decodeProperties(r, "will") : {};
    p.will = {
      properties: wp,
      topic: r.utf8("will topic"),
      payload: r.binary("will payload"),
      qos: willQos as QoS,
      retain: willRetain,
    };
  }
  if (f & 0x80) p.username = r.utf8("user name");
  if (f & 0x40) p.password = r.binary("password");
  r.end();
  return p;
}

// deno-fmt-ignore
const CONNACK_V5 = [
  0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97,
  0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
];

function decodeConnack(r: Reader, v5: boolean): ConnackPacket {
  // An MQTT 3.1.1 broker answers an MQTT 5 CONNECT with its own refusal, 20 02 00 01: two bytes
  // that are no MQTT 5 CONNACK (no property length, a return code MQTT 5 does not have).
  if (v5 && r.remaining === 2) {
    const legacy = r.view(2, "CONNACK");
    const rc = legacy[1]!;
    if (legacy[0] === 0 && rc >= 1 && rc <= 5) {
      return {
        type: "connack",
        sessionPresent: false,
        reasonCode: rc,
        properties: {},
        mqtt311Refusal: true,
      };
    }
    throw protocolError("truncated", "Cannot decode CONNACK: property length is truncated");
  }
  const f = r.u8("acknowledge flags");
  if (f > 1) throw protocolError("reserved_flags", "Cannot decode CONNACK: reserved flags set");
  const rc = reasonCode(r, v5 ? CONNACK_V5 : [0, 1, 2, 3, 4, 5], v5);
  if (rc !== 0 && f === 1) {
    throw protocolError("session_present", "Cannot decode CONNACK: session present on a refusal");
  }
  const properties = v5 ? decodeProperties(r, "connack") : {};
  r.end();
  return { type: "connack", sessionPresent: f === 1, reasonCode: rc, properties };
}

function decodePublish(r: Reader, f: number, v5: boolean): PublishPacket {
  const qos = (f >> 1) & 3;
  const dup = (f & 8) !== 0;
  if (qos === 3) throw protocolError("invalid_qos", "Cannot decode PUBLISH: QoS 3");
  if (qos === 0 && dup) {
    throw protocolError("reserved_flags", "Cannot decode PUBLISH: DUP at QoS 0");
  }
  const topic = r.utf8("topic name");
  if (/[+#]/.test(topic)) {
    throw protocolError("invalid_topic", "Cannot decode PUBLISH: topic name holds a wildcard");
  }
  // MQTT 5 allows an empty topic with a Topic Alias (which the client refuses on its own).
  if (topic === "" && !v5) throw protocolError("invalid_topic", "Cannot decode PUBLISH: no topic");
  const id = qos > 0 ? packetId(r) : 0;
  const properties = v5 ? decodeProperties(r, "publish") : {};
  return {
    type: "publish",
    topic,
    payload: r.rest(),
    qos: qos as QoS,
    retain: (f & 1) !== 0,
    dup,
    packetId: id,
    properties,
  };
}

const PUBACK_V5 = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];

function decodePuback(r: Reader, v5: boolean): PubackPacket {
  const id = packetId(r);
  let rc = 0;
  let properties: Properties = {};
  if (v5 && r.remaining > 0) {
    rc = reasonCode(r, PUBACK_V5);
    if (r.remaining > 0) properties = decodeProperties(r, "puback");
  }
  r.end();
  return { type: "puback", packetId: id, reasonCode: rc, properties };
}

function decodeSubscribe(r: Reader, v5: boolean): SubscribePacket {
  const id = packetId(r);
  const properties = v5 ? decodeProperties(r, "subscribe") : {};
  const subscriptions: Subscription[] = [];
  while (r.remaining > 0) {
    const filter = r.utf8("topic filter");
    const o = r.u8("subscription options");
    if ((v5 ? o & 0xc0 : o & 0xfc) !== 0 || (o & 3) === 3 || ((o >> 4) & 3) === 3) {
      throw protocolError("reserved_flags", "Cannot decode SUBSCRIBE: subscription options");
    }
    subscriptions.push({
      filter,
      qos: (o & 3) as QoS,
      noLocal: (o & 4) !== 0,
      retainAsPublished: (o & 8) !== 0,
      retainHandling: ((o >> 4) & 3) as 0 | 1 | 2,
    });
  }
  if (subscriptions.length === 0) {
    throw protocolError("invalid_length", "Cannot decode SUBSCRIBE: no topic filter");
  }
  return { type: "subscribe", packetId: id, subscriptions, properties };
}

const SUBACK_V4 = [0x00, 0x01, 0x02, 0x80];
const SUBACK_V5 = [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2];

function decodeSuback(r: Reader, v5: boolean): SubackPacket {
  const id = packetId(r);
  const properties = v5 ? decodeProperties(r, "suback") : {};
  const reasonCodes: number[] = [];
  while (r.remaining > 0) reasonCodes.push(reasonCode(r, v5 ? SUBACK_V5 : SUBACK_V4, v5));
  if (reasonCodes.length === 0) {
    throw protocolError("invalid_length", "Cannot decode SUBACK: no reason code");
  }
  return { type: "suback", packetId: id, reasonCodes, properties };
}

// deno-fmt-ignore
const DISCONNECT_V5 = [
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95,
  0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
];

function decodeDisconnect(r: Reader): DisconnectPacket {
  let rc = 0;
  let properties: Properties = {};
  if (r.remaining > 0) {
    rc = reasonCode(r, DISCONNECT_V5);
    if (r.remaining > 0) properties = decodeProperties(r, "disconnect");
  }
  r.end();
  return { type: "disconnect", reasonCode: rc, properties };
}
