/**
 * A small MQTT 3.1.1 / MQTT 5 client over Deno's own sockets and WebSocket: no Node
 * compatibility layer, no npm package. See client.ts for what it does and refuses.
 *
 * ```ts
 * const c = await MqttClient.connect({ url: "mqtt://127.0.0.1:1883", protocolVersion: 5,
 *   clientId: "linkd", keepaliveS: 30, onMessage: (m) => console.log(m.topic) });
 * await c.subscribe("linkd/cmd/+", { qos: 1 });
 * await c.publish("linkd/state", bytes, { qos: 1, retain: true });
 * await c.disconnect();
 * ```
 */
export { MqttClient } from "./client.ts";
export { MqttError, type MqttErrorCode, type ProtocolReason } from "./errors.ts";
export type {
  Connack,
  ConnackProperties,
  ConnectOptions,
  IncomingMessage,
  MqttTimers,
  PublishOptions,
  PublishProperties,
  SubscribeOptions,
  Will,
} from "./types.ts";
