/**
 * Commands on `P/cmd/+` (CONTRACT.md section 4), from the message to the reply: bounded and
 * checked (payloads.ts), rate-limited per command name (rate_limit.ts), handed to the one
 * handler with a deadline, and answered on the MQTT 5 response topic with the request's
 * correlation data. Hostile input is answered with a coded error and never throws out of here.
 *
 * Written against a `Replier` (anything with `publish(topic, payload, options)`): the bus
 * passes the connection the command came on, the unit tests a recorder, so every rule here is
 * tested without a broker and on fake time (dispatch_test.ts).
 *
 * - A retained command is an old one replayed by the broker: never acted on.
 * - Replies go only to a response topic under `P/reply/` with no wildcard or NUL: the speaker's
 *   broker lets linkd publish only under its prefix, and a command must never be able to send
 *   the token to another topic. Without a valid one the command runs and is not answered (nor
 *   on MQTT 3.1.1, which has no response topic).
 * - Each command name has its own token bucket (unknown names share one), so a flood of one
 *   cannot starve another; refused commands count too, and the first refusal is logged once.
 * - A handler that throws, answers nonsense or outlives handlerTimeoutMs gets `internal` or
 *   `timeout`; its message is never logged (only its name and code).
 * - A token reply carries the message expiry of the seconds it has left; an expired one is
 *   answered `no_token`.
 */
import { encodeCbor } from "../cbor.ts";
import type { Clock } from "../clock.ts";
import type { IncomingMessage, PublishOptions, PublishProperties } from "./mqtt/mod.ts";
import { describeError } from "./log.ts";
import { topicNameProblem } from "./mqtt/validate.ts";
import { BusCode, type CommandName, type CommandOptions, type CommandReply } from "../contract.ts";
import { errorReply, isCommandName, isTokenReply, parseCommand, replyPayload } from "./payloads.ts";
import { DEFAULT_COMMAND_RATE, type RateLimit, TokenBucket } from "./rate_limit.ts";

export type CommandHandler = (
  cmd: CommandName,
  options: CommandOptions,
) => Promise<CommandReply>;

/** Where replies go: the connection the command came on. Its outcome is not looked at. */
export interface Replier {
  publish(topic: string, payload: Uint8Array, options: PublishOptions): Promise<unknown>;
}

/** How long a command handler may take before the reply is `timeout`. */
export const HANDLER_TIMEOUT_MS = 30_000;

export interface DispatchOptions {
  /** `bus.prefix`: commands on `P/cmd/<name>`, replies under `P/reply/`. */
  prefix: string;
  /** Monotonic time for the buckets; sleep for the handler's deadline. */
  clock: Pick<Clock, "monotonic" | "sleep">;
  /** False on MQTT 3.1.1: commands are served but never answered (no response topic). */
  replies: boolean;
  /** Per command name (default DEFAULT_COMMAND_RATE). */
  commandRate?: RateLimit | undefined;
  /** Default HANDLER_TIMEOUT_MS. */
  handlerTimeoutMs?: number | undefined;
  /** One line per event; never holds a payload or a secret. */
  log: (line: string) => void;
}

/** A handler's answer is one of the two reply shapes; anything else is the handler's bug. */
function checkReply(r: unknown): r is CommandReply {
  if (r === null || typeof r !== "object") return false;
  const o = r as Record<string, unknown>;
  if (typeof o.access_token === "string") return true;
  return typeof o.ok === "boolean";
}

export class Dispatcher {
  /** The one handler of every command; until it is set, commands are answered `unavailable`. */
  handler: CommandHandler | null = null;
  readonly #o: DispatchOptions;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #quiet = new Set<string>();

  constructor(options: DispatchOptions) {
    this.#o = options;
  }

  /** Acts on one message of `P/cmd/+` and answers on `out`. Never rejects. */
  receive(m: IncomingMessage, out: Replier): Promise<void> {
    return this.#command(m, out).catch((e) => {
      this.#o.log(`command failed: ${describeError(e)}`);
    });
  }

  /** The reply topic when it is one linkd may answer on: under `P/reply/`, no wildcards. */
  #replyTopic(m: IncomingMessage): string | null {
    const t = m.properties.responseTopic;
    if (t === undefined) return null;
    const base = `${this.#o.prefix}/reply/`;
    if (
      typeof t !== "string" || !t.startsWith(base) || t.length === base.length ||
      t.length > 256 || topicNameProblem(t) !== null
    ) {
      this.#o.log(
        `ignoring response topic ${JSON.stringify(String(t).slice(0, 80))}: not under ${base}`,
      );
      return null;
    }
    return t;
  }

  #take(key: string): boolean {
    let b = this.#buckets.get(key);
    if (!b) {
      const clock = this.#o.clock;
      b = new TokenBucket(this.#o.commandRate ?? DEFAULT_COMMAND_RATE, () => clock.monotonic());
      this.#buckets.set(key, b);
    }
    if (b.take()) {
      this.#quiet.delete(key);
      return true;
    }
    if (!this.#quiet.has(key)) {
      this.#quiet.add(key);
      this.#o.log(`rate limiting ${key} commands (further refusals not logged)`);
    }
    return false;
  }

  async #command(m: IncomingMessage, out: Replier): Promise<void> {
    const { topic, payload } = m;
    // A retained command is an old one replayed by the broker: never act on it.
    if (m.retain) {
      this.#o.log(`ignoring a retained message on ${JSON.stringify(topic.slice(0, 80))}`);
      return;
    }
    const base = `${this.#o.prefix}/cmd/`;
    if (!topic.startsWith(base)) return;
    const name = topic.slice(base.length);
    const replyTo = this.#replyTopic(m);
    const correlation = m.properties.correlationData;
    const reply = (r: CommandReply) => this.#reply(out, replyTo, correlation, r);

    if (!isCommandName(name)) {
      if (!this.#take("unknown")) {
        return reply(errorReply(BusCode.RATE_LIMITED, "Too many unknown commands"));
      }
      this.#o.log(`unknown command ${JSON.stringify(name.slice(0, 64))}`);
      return reply(
        errorReply(BusCode.UNKNOWN_COMMAND, `Unknown command ${JSON.stringify(name.slice(0, 64))}`),
      );
    }
    if (!this.#take(name)) {
      return reply(errorReply(BusCode.RATE_LIMITED, `Too many ${name} commands: try again later`));
    }
    const parsed = parseCommand(name, payload);
    if (!parsed.ok) {
      this.#o.log(`refused cmd/${name}: ${parsed.error.code}`);
      return reply({ ok: false, error: parsed.error });
    }
    const handler = this.handler;
    if (!handler) {
      return reply(errorReply(BusCode.UNAVAILABLE, "linkd is not serving commands yet"));
    }
    return reply(await this.#runHandler(handler, name, parsed.options));
  }

  async #runHandler(
    handler: CommandHandler,
    name: CommandName,
    options: CommandOptions,
  ): Promise<CommandReply> {
    const timeoutMs = this.#o.handlerTimeoutMs ?? HANDLER_TIMEOUT_MS;
    const stop = new AbortController();
    const timeout = this.#o.clock.sleep(timeoutMs, stop.signal).then(
      () => errorReply(BusCode.TIMEOUT, `Command ${name} took longer than ${timeoutMs} ms`),
      () => null,
    );
    const run = (async () => {
      try {
        return await handler(name, options);
      } catch (e) {
        // The name and code only: a handler's message is not the bus's to print.
        const code = (e as { code?: unknown } | null)?.code;
        const what = e instanceof Error ? e.name : typeof e;
        this.#o.log(
          `cmd/${name} handler failed: ${what}${code === undefined ? "" : ` (${code})`}`,
        );
        return errorReply(BusCode.INTERNAL, `Command ${name} failed`);
      }
    })();
    const r = await Promise.race([run, timeout.then((t) => t ?? run)]);
    stop.abort();
    return checkReply(r) ? r : errorReply(BusCode.INTERNAL, `Command ${name} gave no reply`);
  }

  async #reply(
    out: Replier,
    replyTo: string | null,
    correlation: Uint8Array | undefined,
    r: CommandReply,
  ): Promise<void> {
    if (replyTo === null || !this.#o.replies) return;
    const opts: PublishOptions = { qos: 1, retain: false };
    const properties: PublishProperties = {};
    if (correlation !== undefined) properties.correlationData = correlation;
    let payload: Uint8Array;
    if (isTokenReply(r)) {
      const left = Math.floor(r.expires_in);
      if (!(left > 0)) {
        payload = encodeCbor(errorReply(BusCode.NO_TOKEN, "The access token has expired"));
      } else {
        properties.messageExpiryInterval = Math.min(left, 0xffffffff);
        payload = encodeCbor(replyPayload(r));
      }
    } else {
      payload = encodeCbor(replyPayload(r));
    }
    opts.properties = properties;
    // Answer on the connection the command came on: after a reconnect the asker resends.
    await out.publish(replyTo, payload, opts);
  }
}
