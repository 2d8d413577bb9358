/** The client's public types (no code). */

/** Timers for keepalive and timeouts; tests pass fake ones. */
export interface MqttTimers {
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
  /**
   * Milliseconds on a monotonic clock, on the same time line as the timers. With it, keepalive
   * keeps one timer and checks when it fires, instead of setting a new one for every packet.
   */
  monotonic?(): number;
}

/** The MQTT 5 properties of a PUBLISH (or a will). All are ignored by MQTT 3.1.1. */
export interface PublishProperties {
  /** Seconds the broker keeps the message for subscribers that have not received it yet. */
  messageExpiryInterval?: number;
  responseTopic?: string;
  correlationData?: Uint8Array;
  contentType?: string;
  /** 1: the payload is UTF-8 text. */
  payloadFormatIndicator?: 0 | 1;
  userProperties?: [string, string][];
}

/** The message the broker publishes when the connection ends without DISCONNECT 0. */
export interface Will {
  topic: string;
  /** At most 65535 bytes. */
  payload: Uint8Array;
  qos: 0 | 1;
  retain: boolean;
  properties?: PublishProperties;
}

export interface ConnectOptions {
  /** `mqtt://` (port 1883), `mqtts://` (8883), `ws://` (80), `wss://` (443); the path for ws. */
  url: string;
  /** 4 = MQTT 3.1.1 (no properties anywhere), 5 = MQTT 5. */
  protocolVersion: 4 | 5;
  clientId: string;
  /** Default true. */
  cleanStart?: boolean;
  /** Seconds; 0 turns keepalive off. The broker's Server Keep Alive wins. */
  keepaliveS: number;
  username?: string;
  password?: string;
  will?: Will;
  /**
   * The biggest packet accepted from the broker, fixed header included (MQTT 5: sent as the
   * CONNECT property). A bigger one is a protocol error (0x95). Default 1 MiB; at least 128.
   */
  maximumPacketSize?: number;
  /** Transport connect plus CONNACK, in ms. Default 10_000. */
  connectTimeoutMs?: number;
  /** disconnect(): ms to wait for the DISCONNECT to go out and the broker to close. Default 2000. */
  disconnectTimeoutMs?: number;
  /**
   * How long a SUBACK, PUBACK or PINGRESP may take, in ms, counted from when its request went
   * out. Past it the connection is closed (no DISCONNECT: the broker has stalled) and
   * `closed` reports `timeout`, naming the packet. Default 10_000 (DEFAULT_ACK_TIMEOUT_MS).
   */
  ackTimeoutMs?: number;
  /** Default: src/timers.ts (not the global setTimeout, which loads Node compat), monotonic. */
  timers?: MqttTimers;
  /** Aborts the connection before CONNACK (reject with code `aborted`); ignored afterwards. */
  signal?: AbortSignal;
  /** mqtts only: root certificates (PEM) trusted besides the system's. */
  caCerts?: string[];
  /** Called for each message, in order; for QoS 1 the PUBACK is sent after it returns. */
  onMessage?: (m: IncomingMessage) => void;
  /** Called with what `onMessage` threw (the message is still acknowledged). */
  onHandlerError?: (error: unknown) => void;
}

export interface IncomingMessage {
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1;
  retain: boolean;
  dup: boolean;
  properties: PublishProperties;
}

export interface PublishOptions {
  qos: 0 | 1;
  retain?: boolean;
  properties?: PublishProperties;
}

export interface SubscribeOptions {
  qos: 0 | 1;
  /** MQTT 5 only (ignored by 3.1.1), as are the two below. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

/** What the broker said in its CONNACK (MQTT 5 properties; none with 3.1.1). */
export interface ConnackProperties {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumQoS?: 0 | 1;
  retainAvailable?: boolean;
  maximumPacketSize?: number;
  assignedClientIdentifier?: string;
  topicAliasMaximum?: number;
  reasonString?: string;
  userProperties?: [string, string][];
  wildcardSubscriptionAvailable?: boolean;
  subscriptionIdentifiersAvailable?: boolean;
  sharedSubscriptionAvailable?: boolean;
  serverKeepAlive?: number;
  responseInformation?: string;
  serverReference?: string;
}

export interface Connack {
  sessionPresent: boolean;
  reasonCode: number;
  properties: ConnackProperties;
}
