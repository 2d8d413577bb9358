/**
 * Wires the link controller to the bus and the presentation outputs:
 * - the controller's state, pairing code, fresh access tokens and capabilities go on the bus,
 *   in the order they happened (one publish queue);
 * - a pairing code is shown by the presenter (voice, segment LEDs, screen, terminal), whose
 *   payloads go to their topics; the end of pairing clears them;
 * - commands from the bus (`pair`, `logout`, `token`, `refresh`) reach the controller; a
 *   `refresh` is answered `{ok: true}` once the token was refreshed, or with the controller's
 *   reason why not (`not_linked`, `rate_limited`, `invalid_grant`, `network`, ...);
 * - after a reconnect the retained state, capabilities and pairing code and a valid token are
 *   published again.
 * A failing publish or output is logged (never with a payload) and never stops the others.
 */
import type { Bus } from "../bus/bus.ts";
import { errorReply, okReply, refreshReason } from "../bus/payloads.ts";
import type {
  Capabilities,
  CommandName,
  CommandOptions,
  CommandReply,
  LinkState,
  PairingInfo,
  Problem,
  Reply,
} from "../contract.ts";
import type { Presenter } from "../present/outputs.ts";
import type { LinkController, LinkListener } from "../link/controller.ts";

export interface BridgeOptions {
  bus: Bus;
  presenter: Presenter;
  /** One line per problem; never a payload. */
  log?: (line: string) => void;
}

export class LinkBridge {
  readonly #o: BridgeOptions;
  #queue: Promise<void> = Promise.resolve();
  #ctl: LinkController | null = null;
  #state: LinkState | null = null;
  /** The code on show; null once taken down; undefined until the controller said either. */
  #pairing: PairingInfo | null | undefined = undefined;
  #caps: Capabilities | null = null;

  constructor(options: BridgeOptions) {
    this.#o = options;
  }

  /** The listener to give the LinkController. */
  readonly listener: LinkListener = {
    state: (s) => {
      this.#state = s;
      this.#publish("state", () => this.#o.bus.publishState(s));
    },
    pairing: (p) => {
      // Taken down already: the outputs are not cleared twice (the daemon's shutdown takes the
      // code down whatever the controller did, and a terminal would say "Pairing ended" again).
      // The first null is always passed on: it clears what a previous run left retained.
      if (p === null && this.#pairing === null) return;
      this.#pairing = p;
      this.#publish("pairing", () => this.#o.bus.publishPairing(p));
      this.#publish(
        "presentation",
        () => (p ? this.#o.presenter.show(p) : this.#o.presenter.clear()),
      );
    },
    token: (t) => this.#publish("token", () => this.#o.bus.publishToken(t)),
    capabilities: (c) => {
      this.#caps = c;
      this.#publish("capabilities", () => this.#o.bus.publishCapabilities(c));
    },
  };

  /** Starts serving bus commands with `ctl`. */
  attach(ctl: LinkController): void {
    this.#ctl = ctl;
    this.#o.bus.onCommand((cmd, options) => this.#command(cmd, options));
  }

  /** After a reconnect: the retained topics and a valid token again. */
  republish(): void {
    const s = this.#state;
    const c = this.#caps;
    const p = this.#pairing ?? null;
    if (s) this.#publish("state", () => this.#o.bus.publishState(s));
    if (c) this.#publish("capabilities", () => this.#o.bus.publishCapabilities(c));
    // The segment and display frames are retained and replayed by the bus; the code is not
    // spoken again just because the broker came back.
    this.#publish("pairing", () => this.#o.bus.publishPairing(p));
    const t = this.#ctl?.currentToken();
    if (t) this.#publish("token", () => this.#o.bus.publishToken(t));
  }

  /** The last state handed to the bus, if any. */
  get lastState(): LinkState | null {
    return this.#state;
  }

  /** Resolves when everything queued so far has been published (or failed). */
  flush(): Promise<void> {
    return this.#queue;
  }

  async #command(cmd: CommandName, options: CommandOptions): Promise<CommandReply> {
    const ctl = this.#ctl;
    if (!ctl) return errorReply("not_ready", "linkd is starting");
    switch (cmd) {
      case "pair":
        await ctl.pair();
        return okReply();
      case "logout":
        await ctl.logout();
        return okReply();
      case "token": {
        const t = ctl.currentToken();
        if (!t) {
          return errorReply(
            "no_token",
            "No valid access token: not linked, or a refresh is under way",
          );
        }
        // P/token is sent "on request" too (CONTRACT section 4): a client on MQTT 3.1.1, or one
        // without a response topic, gets the token there; the reply carries it as well.
        this.#publish("token", () => this.#o.bus.publishToken(t));
        return t;
      }
      case "refresh":
        return refreshReply(await ctl.refreshNow(refreshReason(options.reason)));
    }
  }

  #publish(what: string, fn: () => Promise<void> | void): void {
    this.#queue = this.#queue.then(fn).catch((e) => {
      const why = e instanceof Error ? e.name : "failure";
      this.#o.log?.(`linkd: publishing ${what} failed (${why})`);
    });
  }
}

/**
 * The reply to `cmd/refresh`: ok once refreshed, else the controller's problem as the error.
 * A problem without a text code is the controller's bug, answered `internal`.
 */
export function refreshReply(p: Problem | null): Reply {
  if (p === null) return okReply();
  const code = typeof p?.code === "string" && p.code !== "" ? p.code.slice(0, 64) : "internal";
  const message = typeof p?.message === "string" ? p.message.slice(0, 200) : "The refresh failed";
  return errorReply(code, message);
}
