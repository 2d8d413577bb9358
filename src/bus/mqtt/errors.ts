/**
 * The one error class of the MQTT client, and the reasons a broker's bytes are refused.
 *
 * Three kinds of failure never mix: a caller's mistake is a `TypeError` with `code`
 * `ERR_INVALID_ARG_VALUE` (`invalidArgument` of ../../text.ts, thrown before anything is sent);
 * everything the network or the broker did is an `MqttError` with a `code`; a broker that broke
 * the protocol is an `MqttError` with code `protocol`, the MQTT 5 reason code the client sends in
 * its DISCONNECT (`reasonCode`) and a named `reason`. No message ever holds a password or a payload: messages name fields, never values.
 */

/**
 * - `refused`: the broker refused the connection (CONNACK `reasonCode`)
 * - `aborted`: the caller's signal aborted the connection before CONNACK
 * - `timeout`: no CONNACK in time, or no SUBACK, PUBACK or PINGRESP within `ackTimeoutMs`
 * - `closed`: the connection ended, or was destroyed, before the operation completed
 * - `protocol`: the broker broke the protocol (`reasonCode`, `reason`)
 * - `too_large`: a packet bigger than the broker's Maximum Packet Size (nothing was sent)
 * - `unsupported`: something the broker said it does not support (e.g. Retain Available = 0)
 * - `network`: the transport failed or the broker closed it (`cause`: the Deno error, if any)
 * - `disconnected`: the broker sent DISCONNECT (MQTT 5; `reasonCode` is its reason)
 */
export type MqttErrorCode =
  | "refused"
  | "aborted"
  | "timeout"
  | "closed"
  | "protocol"
  | "too_large"
  | "unsupported"
  | "network"
  | "disconnected";

/** Why incoming bytes were refused; each maps to one MQTT 5 reason code (`reasonCodeOf`). */
export type ProtocolReason =
  // 0x81 Malformed Packet
  | "truncated"
  | "trailing_bytes"
  | "length_mismatch"
  | "varint_too_long"
  | "varint_not_minimal"
  | "invalid_utf8"
  | "null_character"
  | "reserved_flags"
  | "reserved_packet_type"
  | "invalid_qos"
  | "invalid_packet_id"
  | "unknown_property"
  | "property_not_allowed"
  | "invalid_reason_code"
  | "invalid_protocol"
  | "invalid_length"
  | "text_frame"
  // 0x82 Protocol Error
  | "duplicate_property"
  | "invalid_property_value"
  | "unexpected_packet"
  | "unknown_packet_id"
  | "qos_not_subscribed"
  | "session_present"
  // 0x90 Topic Name invalid
  | "invalid_topic"
  // 0x94 Topic Alias invalid
  | "topic_alias"
  // 0x95 Packet too large
  | "packet_too_large";

/** The reason code a client sends in its DISCONNECT for `reason`. */
export function reasonCodeOf(reason: ProtocolReason): number {
  switch (reason) {
    case "duplicate_property":
    case "invalid_property_value":
    case "unexpected_packet":
    case "unknown_packet_id":
    case "qos_not_subscribed":
    case "session_present":
      return 0x82;
    case "invalid_topic":
      return 0x90;
    case "topic_alias":
      return 0x94;
    case "packet_too_large":
      return 0x95;
    default:
      return 0x81;
  }
}

export interface MqttErrorOptions {
  reasonCode?: number;
  reason?: ProtocolReason;
  cause?: unknown;
}

export class MqttError extends Error {
  readonly code: MqttErrorCode;
  /** CONNACK, PUBACK or DISCONNECT reason code (received, or sent for `protocol`). */
  readonly reasonCode: number | undefined;
  /** For code `protocol`: what was wrong with the broker's bytes. */
  readonly reason: ProtocolReason | undefined;

  constructor(code: MqttErrorCode, message: string, options: MqttErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MqttError";
    this.code = code;
    this.reasonCode = options.reasonCode;
    this.reason = options.reason;
  }
}

/** A broker's protocol violation: code `protocol`, with the reason code to disconnect with. */
export function protocolError(reason: ProtocolReason, message: string): MqttError {
  return new MqttError("protocol", message, { reason, reasonCode: reasonCodeOf(reason) });
}

/** A short, printable name for an MQTT reason code, for error messages. */
export function reasonName(code: number, version: 4 | 5): string {
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  if (version === 4) {
    switch (code) {
      case 1:
        return `${code} unacceptable protocol version`;
      case 2:
        return `${code} identifier rejected`;
      case 3:
        return `${code} server unavailable`;
      case 4:
        return `${code} bad user name or password`;
      case 5:
        return `${code} not authorized`;
      default:
        return `${code}`;
    }
  }
  switch (code) {
    case 0x00:
      return `${hex} success`;
    case 0x04:
      return `${hex} disconnect with will message`;
    case 0x10:
      return `${hex} no matching subscribers`;
    case 0x80:
      return `${hex} unspecified error`;
    case 0x81:
      return `${hex} malformed packet`;
    case 0x82:
      return `${hex} protocol error`;
    case 0x83:
      return `${hex} implementation specific error`;
    case 0x84:
      return `${hex} unsupported protocol version`;
    case 0x85:
      return `${hex} client identifier not valid`;
    case 0x86:
      return `${hex} bad user name or password`;
    case 0x87:
      return `${hex} not authorized`;
    case 0x88:
      return `${hex} server unavailable`;
    case 0x89:
      return `${hex} server busy`;
    case 0x8a:
      return `${hex} banned`;
    case 0x8b:
      return `${hex} server shutting down`;
    case 0x8c:
      return `${hex} bad authentication method`;
    case 0x8d:
      return `${hex} keep alive timeout`;
    case 0x8e:
      return `${hex} session taken over`;
    case 0x90:
      return `${hex} topic name invalid`;
    case 0x93:
      return `${hex} receive maximum exceeded`;
    case 0x94:
      return `${hex} topic alias invalid`;
    case 0x95:
      return `${hex} packet too large`;
    case 0x97:
      return `${hex} quota exceeded`;
    case 0x99:
      return `${hex} payload format invalid`;
    case 0x9a:
      return `${hex} retain not supported`;
    case 0x9b:
      return `${hex} QoS not supported`;
    case 0x9c:
      return `${hex} use another server`;
    case 0x9d:
      return `${hex} server moved`;
    case 0x9f:
      return `${hex} connection rate exceeded`;
    default:
      return hex;
  }
}
