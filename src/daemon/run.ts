/**
 * `linkd run`: the daemon the speaker starts at boot (CONTRACT.md section 1).
 *
 * Boot: open the flash and mount the sealed store, connect the bus, then publish the first
 * state (`unprovisioned`, `error` with `store_damaged` when the OTP is written but the flash
 * cannot give the identity, or the link controller's) and tell systemd READY=1. A provisioned
 * device serves its sealed token without touching the network, refreshes an expired one, or
 * starts the code-pair flow; commands arrive on the bus. On SIGTERM: cancel whatever runs,
 * take the code down, publish `offline`, flush the flash, exit 0. A reload (SIGHUP, see
 * src/cli/main.ts) stops it the same way, but with `keepState` the bus keeps the last state
 * instead of `offline`, and a new runDaemon starts with the new config in the same process.
 *
 * Logging: each line has a level (src/daemon/log.ts): each state change once with its problem's
 * code (report.ts; `err` for state `error`), failures of a publish, an output or the bus
 * `warning`, the bus's connects `notice`, the rest `info`. `onStatus` gets systemd's `STATUS=`.
 */
import type { Fetch } from "../auth/types.ts";
import { type Bus, BusError, connectBus, LOGIN_REFUSALS } from "../bus/bus.ts";
import { busLogin } from "../bus/credentials.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config.ts";
import { Device } from "../device.ts";
import { Code, LinkdError } from "../errors.ts";
import { LinkBridge } from "./bridge.ts";
import { LinkController, type LinkListener } from "../link/controller.ts";
import { storeDamaged } from "../link/problems.ts";
import { http1Fetch } from "../net/http1.ts";
import { collectSoon } from "./gc.ts";
import { Presenter } from "../present/outputs.ts";
import type { Level, Log } from "./log.ts";
import { reportingListener } from "./report.ts";

/** What the daemon needs from outside; the defaults are the real ones. */
export interface DaemonOptions {
  config: Config;
  /** Aborted on SIGTERM (and SIGINT): the daemon shuts down cleanly. */
  signal: AbortSignal;
  /** One line (never a secret) with its level: see log.ts. */
  log: Log;
  /** Where the `terminal` output goes (the demo's console; stdout on a device). */
  terminal?: (text: string) => void;
  clock?: Clock;
  /** Default: http1Fetch (src/net/http1.ts), not Deno's fetch, whose memory grows per request. */
  fetch?: Fetch;
  random?: () => number;
  /** Called once the first state is on the bus (systemd READY=1). */
  onReady?: () => void;
  /** The status for systemd (`STATUS=`), one line, on each change: e.g. `error: network`. */
  onStatus?: (status: string) => void;
  /**
   * Asked when the daemon stops: true leaves its last state on the bus (a reload onto the same
   * bus and prefix) instead of publishing `offline`. The code is taken down and the flash
   * flushed and closed either way.
   */
  keepState?: () => boolean;
  /** Another broker than `config.bus` (the demo's embedded one), with its MQTT version. */
  broker?: { url: string; protocolVersion: 4 | 5 };
}

/** Runs until `signal` aborts; resolves with the exit code. */
export async function runDaemon(o: DaemonOptions): Promise<number> {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? Math.random;
  const device = Device.open(o.config);
  let bus: Bus | null = null;
  let ctl: LinkController | null = null;
  let bridge: LinkBridge | null = null;
  try {
    // A provisioned device (its OTP is written) whose flash cannot give its identity is damaged:
    // it says so on the bus and in the log, and writes nothing until it is repaired.
    const boot = device.bootIdentity();
    const provisioned = boot.kind === "provisioned" ? boot.signed : null;
    const login = o.broker ? {} : busLogin(o.config.bus);
    try {
      bus = await connectBus({
        url: o.broker?.url ?? o.config.bus.url,
        ...login,
        prefix: o.config.bus.prefix,
        clock,
        random,
        signal: o.signal,
        ...(o.broker ? { protocolVersion: o.broker.protocolVersion } : {}),
        onReconnect: () => bridge?.republish(),
        log: (line) => o.log(line, busLevel(line)),
      });
    } catch (e) {
      if (o.signal.aborted) return 0;
      if (e instanceof BusError && e.code === "refused") {
        const rc = e.reasonCode ?? -1;
        throw new LinkdError(
          Code.CONFIG,
          LOGIN_REFUSALS.has(rc)
            ? `Cannot log in to the bus at ${o.config.bus.url}: the broker refused (check bus.username and bus.passwordFile)`
            : `Cannot connect to the bus at ${o.config.bus.url}: the broker refused linkd's connection (reason 0x${
              rc.toString(16).padStart(2, "0")
            }; linkd needs MQTT 5, QoS 1 and retained messages)`,
        );
      }
      throw e;
    }
    const b = bus;
    const presenter = new Presenter({
      outputs: o.config.display.outputs,
      lang: o.config.display.lang,
      segment: { ...o.config.display.segment },
      screen: { ...o.config.display.screen },
      clock,
      sinks: {
        say: (x) => b.publishSay(x),
        segment: (x) => b.publishSegment(x),
        display: (x) => b.publishDisplay(x),
        terminal: (t) => o.terminal?.(t),
      },
      onError: (output, e) =>
        o.log(
          `linkd: the ${output} output failed (${e instanceof Error ? e.name : "error"})`,
          "warning",
        ),
    });
    bridge = new LinkBridge({ bus, presenter, log: (line) => o.log(line, "warning") });
    // Every state goes through `listener`: logged once per change, STATUS= for systemd.
    const listener = reportingListener(bridge.listener, o.log, o.onStatus);
    if (boot.kind === "damaged") {
      const error = storeDamaged(boot.detail);
      listener.state!({ state: "error", since: clock.now(), scopes: [], error });
    } else if (!provisioned) {
      listener.state!({ state: "unprovisioned", since: clock.now(), scopes: [] });
    } else {
      const id = provisioned.identity;
      ctl = new LinkController({
        vault: device.vault(),
        identity: { clientId: id.client_id, productId: id.product_id, serial: id.serial },
        auth: o.config.auth,
        fetch: o.fetch ?? http1Fetch,
        clock,
        random,
        lang: o.config.display.lang,
        listener: afterEachToken(listener, collectSoon),
      });
      bridge.attach(ctl);
      await ctl.start(); // a sealed valid token: linked at once, without the network
      // Pairing states wait for the server's answer: publish the first state now.
      if (!bridge.lastState) listener.state!(ctl.state);
    }
    await bridge.flush();
    if (!o.signal.aborted) o.onReady?.();
    await new Promise<void>((resolve) => {
      if (o.signal.aborted) return resolve();
      o.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    return 0;
  } finally {
    await ctl?.stop();
    if (bridge) {
      bridge.listener.pairing!(null); // take the code down everywhere
      await bridge.flush();
    }
    if (bus) {
      const kept = o.keepState?.() ? bridge?.lastState ?? null : null;
      await bus.close(kept ?? undefined); // publishes `offline`, or the state it keeps
      o.log(
        kept ? `linkd: stopped for a reload, state ${kept.state} kept` : "linkd: state offline",
        "notice",
      );
    }
    device.close();
  }
}

/** The level of a line the bus logged: its connects and closes are news, the rest failures. */
export function busLevel(line: string): Level {
  if (/^bus: (connected to |closed$)/.test(line)) return "notice";
  return "warning";
}

/** `listener`, and `then` after each token it was given (a link or a refresh). */
export function afterEachToken(listener: LinkListener, then: () => void): LinkListener {
  return {
    ...listener,
    token: (t) => {
      listener.token?.(t);
      then();
    },
  };
}
