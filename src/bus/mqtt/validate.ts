/**
 * Checks of the caller's arguments, before anything is sent. A mistake is a TypeError with
 * code `ERR_INVALID_ARG_VALUE` naming the option; the message never repeats a string the caller
 * gave (a topic may be harmless, a password is not, and one rule is simpler than two).
 */
import { type CancelTimer, startTimer } from "../../timers.ts";
import { checkString, STRING_MAX, utf8Encode } from "./codec.ts";
import { invalidArgument } from "../../text.ts";
import { type ConnectPacket, encodePacket, PACKET_MAX } from "./packets.ts";
import type { Properties } from "./properties.ts";
import { type BrokerAddress, parseBrokerUrl } from "./transport.ts";
import type { ConnectOptions, IncomingMessage, MqttTimers } from "./types.ts";

export const DEFAULT_MAXIMUM_PACKET_SIZE = 1024 * 1024;
export const MINIMUM_PACKET_SIZE = 128;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_DISCONNECT_TIMEOUT_MS = 2_000;
/**
 * How long a request waits for its acknowledgement (SUBACK, PUBACK, PINGRESP) before the
 * connection is taken for dead. A broker on the speaker answers within milliseconds; one that
 * has not answered in 10 s has stalled, and waiting longer only holds back what comes after.
 */
export const DEFAULT_ACK_TIMEOUT_MS = 10_000;

/** Checked connection options, with defaults. */
export interface Settings {
  endpoint: BrokerAddress;
  version: 4 | 5;
  cleanStart: boolean;
  keepaliveS: number;
  maximumPacketSize: number;
  connectTimeoutMs: number;
  disconnectTimeoutMs: number;
  ackTimeoutMs: number;
  timers: MqttTimers;
  signal: AbortSignal | undefined;
  caCerts: string[] | undefined;
  onMessage: ((m: IncomingMessage) => void) | undefined;
  onHandlerError: ((error: unknown) => void) | undefined;
}

/**
 * The default timers: src/timers.ts, not the global setTimeout, whose first call in Deno 2.9
 * loads the Node compatibility layer (10 ms and 4 MB on linkd's boot path). With a monotonic
 * clock, keepalive keeps one timer per idle period.
 */
const liveTimers = new Map<number, CancelTimer>();
let nextTimerId = 1;
const defaultTimers: MqttTimers = {
  setTimeout(fn, ms) {
    const id = nextTimerId++;
    liveTimers.set(
      id,
      startTimer(ms, () => {
        liveTimers.delete(id);
        fn();
      }),
    );
    return id;
  },
  clearTimeout(id) {
    liveTimers.get(id)?.();
    liveTimers.delete(id);
  },
  monotonic: () => performance.now(),
};

function checkFunction<T>(v: unknown, what: string): T | undefined {
  if (v !== undefined && typeof v !== "function") {
    throw invalidArgument(`Invalid ${what}: expected a function`);
  }
  return v as T | undefined;
}

/**
 * Checks every option (a TypeError names the first wrong one) and encodes the CONNECT, which
 * holds the password: the caller sends it once and wipes it.
 */
export function checkConnectOptions(
  o: ConnectOptions,
): { settings: Settings; connect: Uint8Array } {
  if (typeof o !== "object" || o === null) throw invalidArgument("Invalid ConnectOptions");
  const W = "ConnectOptions";
  if (typeof o.url !== "string") throw invalidArgument(`Invalid ${W}.url: not a string`);
  const endpoint = parseBrokerUrl(o.url);
  const version = o.protocolVersion;
  if (version !== 4 && version !== 5) throw invalidArgument(`Invalid ${W}.protocolVersion`);
  checkString(o.clientId, `${W}.clientId`);
  const cleanStart = checkBoolean(o.cleanStart, `${W}.cleanStart`) ?? true;
  if (version === 4 && o.clientId === "" && !cleanStart) {
    throw invalidArgument(`Invalid ${W}.clientId: MQTT 3.1.1 needs one without cleanStart`);
  }
  const keepaliveS = checkInteger(o.keepaliveS, 0, 65_535, `${W}.keepaliveS`);
  if (o.username !== undefined) checkString(o.username, `${W}.username`);
  let password: Uint8Array | undefined;
  if (o.password !== undefined) {
    if (typeof o.password !== "string" || !o.password.isWellFormed()) {
      throw invalidArgument(`Invalid ${W}.password: not a well-formed string`);
    }
    if (version === 4 && o.username === undefined) {
      throw invalidArgument(`Invalid ${W}.password: MQTT 3.1.1 needs a username with it`);
    }
    password = utf8Encode(o.password);
    if (password.length > STRING_MAX) {
      throw invalidArgument(`Invalid ${W}.password: longer than ${STRING_MAX} bytes`);
    }
  }
  const maximumPacketSize = o.maximumPacketSize === undefined
    ? DEFAULT_MAXIMUM_PACKET_SIZE
    : checkInteger(o.maximumPacketSize, MINIMUM_PACKET_SIZE, PACKET_MAX, `${W}.maximumPacketSize`);
  const connectTimeoutMs = o.connectTimeoutMs === undefined
    ? DEFAULT_CONNECT_TIMEOUT_MS
    : checkInteger(o.connectTimeoutMs, 1, 2_147_483_647, `${W}.connectTimeoutMs`);
  const disconnectTimeoutMs = o.disconnectTimeoutMs === undefined
    ? DEFAULT_DISCONNECT_TIMEOUT_MS
    : checkInteger(o.disconnectTimeoutMs, 0, 2_147_483_647, `${W}.disconnectTimeoutMs`);
  const ackTimeoutMs = o.ackTimeoutMs === undefined
    ? DEFAULT_ACK_TIMEOUT_MS
    : checkInteger(o.ackTimeoutMs, 1, 2_147_483_647, `${W}.ackTimeoutMs`);
  const timers = o.timers ?? defaultTimers;
  if (typeof timers.setTimeout !== "function" || typeof timers.clearTimeout !== "function") {
    throw invalidArgument(`Invalid ${W}.timers: expected setTimeout and clearTimeout`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw invalidArgument(`Invalid ${W}.signal: not an AbortSignal`);
  }
  if (
    o.caCerts !== undefined &&
    (!Array.isArray(o.caCerts) || !o.caCerts.every((c) => typeof c === "string"))
  ) {
    throw invalidArgument(`Invalid ${W}.caCerts: expected PEM strings`);
  }
  const packet: ConnectPacket = {
    type: "connect",
    protocolVersion: version,
    clientId: o.clientId,
    cleanStart,
    keepalive: keepaliveS,
    properties: version === 5 ? { maximumPacketSize } : {},
  };
  if (o.username !== undefined) packet.username = o.username;
  if (password !== undefined) packet.password = password;
  if (o.will !== undefined) {
    const w = o.will;
    if (typeof w !== "object" || w === null) throw invalidArgument(`Invalid ${W}.will`);
    packet.will = {
      topic: checkTopicName(w.topic, `${W}.will.topic`),
      payload: checkBytes(w.payload, `${W}.will.payload`, STRING_MAX),
      qos: checkInteger(w.qos, 0, 1, `${W}.will.qos`) as 0 | 1,
      retain: checkBoolean(w.retain, `${W}.will.retain`) ?? false,
      properties: version === 5 ? checkPublishProperties(w.properties, `${W}.will.properties`) : {},
    };
  }
  const settings: Settings = {
    endpoint,
    version,
    cleanStart,
    keepaliveS,
    maximumPacketSize,
    connectTimeoutMs,
    disconnectTimeoutMs,
    ackTimeoutMs,
    timers,
    signal: o.signal,
    caCerts: o.caCerts,
    onMessage: checkFunction(o.onMessage, `${W}.onMessage`),
    onHandlerError: checkFunction(o.onHandlerError, `${W}.onHandlerError`),
  };
  return { settings, connect: encodePacket(packet, version) };
}

export function isInteger(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

export function checkInteger(v: unknown, min: number, max: number, what: string): number {
  if (!isInteger(v, min, max)) {
    throw invalidArgument(`Invalid ${what}: expected an integer from ${min} to ${max}`);
  }
  return v;
}

export function checkBoolean(v: unknown, what: string): boolean | undefined {
  if (v !== undefined && typeof v !== "boolean") {
    throw invalidArgument(`Invalid ${what}: expected a boolean`);
  }
  return v;
}

export function checkBytes(v: unknown, what: string, max = Infinity): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalidArgument(`Invalid ${what}: expected a Uint8Array`);
  if (v.length > max) throw invalidArgument(`Invalid ${what}: longer than ${max} bytes`);
  return v;
}

/** Why `v` is not a Topic Name (not empty, no wildcard, no U+0000), or null when it is one. */
export function topicNameProblem(v: string): string | null {
  if (v === "") return "empty";
  if (/[+#]/.test(v)) return "holds a wildcard (+ or #)";
  return v.includes("\0") ? "holds U+0000" : null;
}

/** A Topic Name: 1..65535 bytes of UTF-8 (checkString), no wildcard, no U+0000. */
export function checkTopicName(v: unknown, what: string): string {
  checkString(v, what);
  const why = topicNameProblem(v);
  if (why !== null) throw invalidArgument(`Invalid ${what}: ${why}`);
  return v;
}

/** A Topic Filter: `+` fills a whole level, `#` only the whole last level. */
export function checkTopicFilter(v: unknown, what: string): string {
  checkString(v, what);
  if (v === "") throw invalidArgument(`Invalid ${what}: empty`);
  const levels = v.split("/");
  levels.forEach((level, i) => {
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      throw invalidArgument(`Invalid ${what}: # must be the whole last level`);
    }
    if (level.includes("+") && level !== "+") {
      throw invalidArgument(`Invalid ${what}: + must be a whole level`);
    }
  });
  return v;
}

/** Checks `p` and returns it as wire properties (only the fields a PUBLISH may carry). */
export function checkPublishProperties(p: unknown, what: string): Properties {
  if (p === undefined) return {};
  if (typeof p !== "object" || p === null) throw invalidArgument(`Invalid ${what}: not an object`);
  const o = p as Record<string, unknown>;
  const out: Properties = {};
  if (o.messageExpiryInterval !== undefined) {
    out.messageExpiryInterval = checkInteger(
      o.messageExpiryInterval,
      0,
      0xffffffff,
      `${what}.messageExpiryInterval`,
    );
  }
  if (o.responseTopic !== undefined) {
    out.responseTopic = checkTopicName(o.responseTopic, `${what}.responseTopic`);
  }
  if (o.correlationData !== undefined) {
    out.correlationData = checkBytes(o.correlationData, `${what}.correlationData`, STRING_MAX);
  }
  if (o.contentType !== undefined) {
    checkString(o.contentType, `${what}.contentType`);
    out.contentType = o.contentType;
  }
  if (o.payloadFormatIndicator !== undefined) {
    if (o.payloadFormatIndicator !== 0 && o.payloadFormatIndicator !== 1) {
      throw invalidArgument(`Invalid ${what}.payloadFormatIndicator: expected 0 or 1`);
    }
    out.payloadFormatIndicator = o.payloadFormatIndicator;
  }
  if (o.userProperties !== undefined) {
    const up = o.userProperties;
    if (!Array.isArray(up)) throw invalidArgument(`Invalid ${what}.userProperties: not an array`);
    out.userProperties = up.map((pair: unknown, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw invalidArgument(`Invalid ${what}.userProperties[${i}]: not a [name, value] pair`);
      }
      checkString(pair[0], `${what}.userProperties[${i}] name`);
      checkString(pair[1], `${what}.userProperties[${i}] value`);
      return [pair[0], pair[1]];
    });
  }
  return out;
}
