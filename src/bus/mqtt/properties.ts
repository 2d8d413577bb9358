/**
 * MQTT 5 properties (section 2.2.2.2): a Variable Byte Integer length, then identifier/value
 * pairs. Decoding refuses an unknown identifier or one not allowed in the packet (malformed), a
 * second copy of a single-valued property and a value out of its range (protocol errors).
 * Encoding writes the defined fields of a `Properties` object in identifier order.
 */
import { Reader, Writer } from "./codec.ts";
import { invalidArgument } from "../../text.ts";
import { protocolError } from "./errors.ts";

export interface Properties {
  /** 0x01 */ payloadFormatIndicator?: 0 | 1;
  /** 0x02 */ messageExpiryInterval?: number;
  /** 0x03 */ contentType?: string;
  /** 0x08 */ responseTopic?: string;
  /** 0x09 */ correlationData?: Uint8Array;
  /** 0x0B, several in a PUBLISH from the server */ subscriptionIdentifiers?: number[];
  /** 0x11 */ sessionExpiryInterval?: number;
  /** 0x12 */ assignedClientIdentifier?: string;
  /** 0x13 */ serverKeepAlive?: number;
  /** 0x15 */ authenticationMethod?: string;
  /** 0x16 */ authenticationData?: Uint8Array;
  /** 0x17 */ requestProblemInformation?: 0 | 1;
  /** 0x18 */ willDelayInterval?: number;
  /** 0x19 */ requestResponseInformation?: 0 | 1;
  /** 0x1A */ responseInformation?: string;
  /** 0x1C */ serverReference?: string;
  /** 0x1F */ reasonString?: string;
  /** 0x21 */ receiveMaximum?: number;
  /** 0x22 */ topicAliasMaximum?: number;
  /** 0x23 */ topicAlias?: number;
  /** 0x24 */ maximumQoS?: 0 | 1;
  /** 0x25 */ retainAvailable?: boolean;
  /** 0x26 */ userProperties?: [string, string][];
  /** 0x27 */ maximumPacketSize?: number;
  /** 0x28 */ wildcardSubscriptionAvailable?: boolean;
  /** 0x29 */ subscriptionIdentifiersAvailable?: boolean;
  /** 0x2A */ sharedSubscriptionAvailable?: boolean;
}

/** Where properties occur: the packets this client handles, and the will in CONNECT. */
export type PropertyKind =
  | "connect"
  | "connack"
  | "publish"
  | "will"
  | "puback"
  | "subscribe"
  | "suback"
  | "disconnect";

const CONNECT = 1;
const CONNACK = 2;
const PUBLISH = 4;
const WILL = 8;
const PUBACK = 16;
const SUBSCRIBE = 32;
const SUBACK = 64;
const DISCONNECT = 128;

function maskOf(kind: PropertyKind): number {
  switch (kind) {
    case "connect":
      return CONNECT;
    case "connack":
      return CONNACK;
    case "publish":
      return PUBLISH;
    case "will":
      return WILL;
    case "puback":
      return PUBACK;
    case "subscribe":
      return SUBSCRIBE;
    case "suback":
      return SUBACK;
    case "disconnect":
      return DISCONNECT;
  }
}

/**
 * Value types: `bool` and `flag` are a byte 0 or 1 (as boolean / as number), `qos` a byte 0 or
 * 1, `u16+`/`u32+` must not be 0, `id` is a Subscription Identifier (varint 1..268435455).
 */
type ValueType = "bool" | "flag" | "qos" | "u16" | "u16+" | "u32" | "u32+" | "id" | "utf8" | "bin";

interface Info {
  key: keyof Properties;
  type: ValueType | "pair";
  kinds: number;
}

function info(key: keyof Properties, type: ValueType | "pair", kinds: number): Info {
  return { key, type, kinds };
}

/** The property with identifier `id`, or undefined. A switch: nothing is built at import. */
function propertyInfo(id: number): Info | undefined {
  const pub = PUBLISH | WILL;
  switch (id) {
    case 0x01:
      return info("payloadFormatIndicator", "flag", pub);
    case 0x02:
      return info("messageExpiryInterval", "u32", pub);
    case 0x03:
      return info("contentType", "utf8", pub);
    case 0x08:
      return info("responseTopic", "utf8", pub);
    case 0x09:
      return info("correlationData", "bin", pub);
    case 0x0b:
      return info("subscriptionIdentifiers", "id", PUBLISH | SUBSCRIBE);
    case 0x11:
      return info("sessionExpiryInterval", "u32", CONNECT | CONNACK | DISCONNECT);
    case 0x12:
      return info("assignedClientIdentifier", "utf8", CONNACK);
    case 0x13:
      return info("serverKeepAlive", "u16", CONNACK);
    case 0x15:
      return info("authenticationMethod", "utf8", CONNECT | CONNACK);
    case 0x16:
      return info("authenticationData", "bin", CONNECT | CONNACK);
    case 0x17:
      return info("requestProblemInformation", "flag", CONNECT);
    case 0x18:
      return info("willDelayInterval", "u32", WILL);
    case 0x19:
      return info("requestResponseInformation", "flag", CONNECT);
    case 0x1a:
      return info("responseInformation", "utf8", CONNACK);
    case 0x1c:
      return info("serverReference", "utf8", CONNACK | DISCONNECT);
    case 0x1f:
      return info("reasonString", "utf8", CONNACK | PUBACK | SUBACK | DISCONNECT);
    case 0x21:
      return info("receiveMaximum", "u16+", CONNECT | CONNACK);
    case 0x22:
      return info("topicAliasMaximum", "u16", CONNECT | CONNACK);
    case 0x23:
      return info("topicAlias", "u16+", PUBLISH);
    case 0x24:
      return info("maximumQoS", "qos", CONNACK);
    case 0x25:
      return info("retainAvailable", "bool", CONNACK);
    case 0x26:
      return info(
        "userProperties",
        "pair",
        CONNECT | CONNACK | PUBLISH | WILL | PUBACK | SUBSCRIBE | SUBACK | DISCONNECT,
      );
    case 0x27:
      return info("maximumPacketSize", "u32+", CONNECT | CONNACK);
    case 0x28:
      return info("wildcardSubscriptionAvailable", "bool", CONNACK);
    case 0x29:
      return info("subscriptionIdentifiersAvailable", "bool", CONNACK);
    case 0x2a:
      return info("sharedSubscriptionAvailable", "bool", CONNACK);
    default:
      return undefined;
  }
}

// deno-fmt-ignore
const IDS = [
  0x01, 0x02, 0x03, 0x08, 0x09, 0x0b, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1c,
  0x1f, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
];

function hex(id: number): string {
  return `0x${id.toString(16).padStart(2, "0")}`;
}

/**
 * Reads a property length and the properties allowed in `kind`.
 *
 * In a PUBLISH, two values are another client's choice that the broker merely relays (mosquitto
 * 2.0 relays both unchecked): a Payload Format Indicator other than 0 or 1 and a Response Topic
 * with a wildcard are left out of the result, not a reason to refuse the packet, or any client
 * allowed to publish could cut the connection at will.
 */
export function decodeProperties(r: Reader, kind: PropertyKind): Properties {
  const where = kind === "will" ? `${r.packet} will` : r.packet;
  const len = r.varint("property length");
  const pr = r.sub(len, "properties");
  const props: Properties = {};
  const out = props as Record<string, unknown>;
  const seen = new Set<string>();
  const mask = maskOf(kind);
  const relayed = kind === "publish";
  while (pr.remaining > 0) {
    const id = pr.varint("property identifier");
    const p = propertyInfo(id);
    if (p === undefined) {
      throw protocolError(
        "unknown_property",
        `Cannot decode ${where}: unknown property ${hex(id)}`,
      );
    }
    if ((p.kinds & mask) === 0) {
      throw protocolError(
        "property_not_allowed",
        `Cannot decode ${where}: property ${p.key} (${hex(id)}) is not allowed there`,
      );
    }
    const bad = (why: string) =>
      protocolError("invalid_property_value", `Cannot decode ${where}: property ${p.key} ${why}`);
    if (p.type === "pair") {
      const k = pr.utf8(`user property name`);
      const v = pr.utf8(`user property value`);
      (props.userProperties ??= []).push([k, v]);
      continue;
    }
    if (p.type === "id") {
      const v = pr.varint(p.key);
      if (v === 0) throw bad("is 0");
      const ids = props.subscriptionIdentifiers ??= [];
      if (ids.length > 0 && kind !== "publish") {
        throw protocolError("duplicate_property", `Cannot decode ${where}: ${p.key} twice`);
      }
      ids.push(v);
      continue;
    }
    if (seen.has(p.key)) {
      throw protocolError("duplicate_property", `Cannot decode ${where}: ${p.key} twice`);
    }
    seen.add(p.key);
    switch (p.type) {
      case "bool":
      case "flag":
      case "qos": {
        const v = pr.u8(p.key);
        if (v > 1 && relayed) break; // payloadFormatIndicator, relayed: left out
        if (v > 1) throw bad(`is ${v}, not 0 or 1`);
        out[p.key] = p.type === "bool" ? v === 1 : v;
        break;
      }
      case "u16":
      case "u16+": {
        const v = pr.u16(p.key);
        if (v === 0 && p.type === "u16+") throw bad("is 0");
        out[p.key] = v;
        break;
      }
      case "u32":
      case "u32+": {
        const v = pr.u32(p.key);
        if (v === 0 && p.type === "u32+") throw bad("is 0");
        out[p.key] = v;
        break;
      }
      case "utf8":
        out[p.key] = pr.utf8(p.key);
        break;
      case "bin":
        out[p.key] = pr.binary(p.key);
        break;
    }
  }
  if (props.responseTopic !== undefined && /[+#]/.test(props.responseTopic)) {
    if (relayed) delete props.responseTopic;
    else {
      throw protocolError(
        "invalid_property_value",
        `Cannot decode ${where}: property responseTopic holds a wildcard`,
      );
    }
  }
  return props;
}

/** Writes the property length and every defined property of `p` allowed in `kind`. */
export function encodeProperties(w: Writer, p: Properties, kind: PropertyKind): void {
  const body = new Writer(32);
  const mask = maskOf(kind);
  const values = p as Record<string, unknown>;
  for (const id of IDS) {
    const pi = propertyInfo(id)!;
    const v = values[pi.key];
    if (v === undefined) continue;
    if ((pi.kinds & mask) === 0) {
      throw invalidArgument(`Cannot encode ${kind} properties: ${pi.key} is not allowed there`);
    }
    const what = `property ${pi.key}`;
    switch (pi.type) {
      case "pair":
        for (const pair of v as [string, string][]) {
          body.u8(id).utf8(pair[0], `${what} name`).utf8(pair[1], `${what} value`);
        }
        break;
      case "id":
        for (const n of v as number[]) body.u8(id).varint(positive(n, what), what);
        break;
      case "bool":
        body.u8(id).u8(v ? 1 : 0);
        break;
      case "flag":
      case "qos":
        if (v !== 0 && v !== 1) throw invalidArgument(`Cannot encode ${what}: not 0 or 1`);
        body.u8(id).u8(v);
        break;
      case "u16":
        body.u8(id).u16(v as number, what);
        break;
      case "u16+":
        body.u8(id).u16(positive(v as number, what), what);
        break;
      case "u32":
        body.u8(id).u32(v as number, what);
        break;
      case "u32+":
        body.u8(id).u32(positive(v as number, what), what);
        break;
      case "utf8":
        body.u8(id).utf8(v as string, what);
        break;
      case "bin":
        body.u8(id).binary(v as Uint8Array, what);
        break;
    }
  }
  const bytes = body.finish();
  w.varint(bytes.length, "property length").bytes(bytes);
}

function positive(n: number, what: string): number {
  if (n === 0) throw invalidArgument(`Cannot encode ${what}: 0 is not allowed`);
  return n;
}
