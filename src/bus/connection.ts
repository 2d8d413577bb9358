/**
 * One network connection of the bus: one MqttClient, connected and subscribed to the commands,
 * never reconnected (session.ts starts the next one). It publishes and reports the outcome
 * ("acked", "refused", "lost") instead of throwing, so the bus above never waits on, nor fails
 * because of, the broker; it logs a refusal once and the end of the connection not at all (the
 * session logs that once, with why).
 */
import {
  type ConnectOptions,
  type IncomingMessage,
  MqttClient,
  MqttError,
  type PublishOptions,
  type SubscribeOptions,
} from "./mqtt/mod.ts";
import { describeError } from "./log.ts";

/** What became of one publish: acknowledged, refused by the broker, or lost with the connection. */
export type Outcome = "acked" | "refused" | "lost";

/** One network connection: one MqttClient, connected and subscribed, never reconnected. */
export class Connection {
  /** Resolves when the connection is gone, whatever the cause. */
  readonly ended: Promise<void>;
  /** Resolves when connected and subscribed; rejects when it ends first. */
  readonly ready: Promise<void>;
  up = false;
  /** Why the connection ended, once it did (null: closed by linkd). */
  why: MqttError | null = null;
  #client: MqttClient | null = null;
  readonly #abort = new AbortController();
  #log: (line: string) => void;

  constructor(
    opts: ConnectOptions,
    commandTopic: string,
    subscription: SubscribeOptions,
    onMessage: (m: IncomingMessage) => void,
    log: (line: string) => void,
  ) {
    this.#log = log;
    let endedResolve!: () => void;
    this.ended = new Promise((r) => (endedResolve = r));
    this.ready = (async () => {
      let client: MqttClient;
      try {
        client = await MqttClient.connect({ ...opts, signal: this.#abort.signal, onMessage });
      } catch (e) {
        endedResolve();
        throw e;
      }
      this.#client = client;
      client.closed.then((why) => {
        this.up = false;
        this.why = why;
        endedResolve();
      });
      let codes: number[];
      try {
        codes = await client.subscribe(commandTopic, subscription);
      } catch (e) {
        // When the connection ended first, why (e.g. no SUBACK in time) says more than "closed
        // before the SUBACK"; any other refusal is its own reason.
        const ended = e instanceof MqttError && e.code === "closed" ? await client.closed : null;
        client.destroy();
        throw ended ?? e;
      }
      if ((codes[0] ?? 0x80) >= 0x80) {
        // Publishing still works: stay connected, without commands.
        log(`the broker refused the subscription to ${commandTopic} (${codes[0]})`);
      }
      if (!client.connected) throw new MqttError("closed", "Connection closed before it was ready");
      this.up = true;
    })();
    this.ready.catch(() => {});
  }

  /** Publishes and waits for PUBACK, a refusal, or the end of the connection. */
  async publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<Outcome> {
    const client = this.#client;
    if (!this.up || !client?.connected) return "lost";
    try {
      const rc = await client.publish(topic, payload, opts);
      if (rc < 0x80) return "acked";
      this.#log(`the broker refused a publish to ${topic} (${rc})`);
      return "refused";
    } catch (e) {
      // e.g. over the broker's maximum packet size; the end of the connection is logged once,
      // by the bus, not once per publish that was waiting
      const closed = e instanceof MqttError && e.code === "closed";
      if (this.up && !closed) this.#log(`cannot publish to ${topic}: ${describeError(e)}`);
      return "lost";
    }
  }

  /** Sends DISCONNECT (normal: no will) and closes, or drops the socket when `force`. */
  async end(force: boolean): Promise<void> {
    this.up = false;
    this.#abort.abort();
    const client = this.#client;
    if (client) {
      if (force) client.destroy();
      else await client.disconnect().catch(() => client.destroy());
    }
    await this.ended;
  }

  /** Drops the socket now, even in the middle of a graceful end. */
  destroy(): void {
    this.up = false;
    this.#abort.abort();
    this.#client?.destroy();
  }
}
