/**
 * linkd's command line (CONTRACT.md section 1): parses, runs one subcommand, and turns every
 * failure into one line on stderr and a sysexits code. Never a stack trace, never a secret.
 */
import { type Config, configPath, loadConfig } from "../config.ts";
import { Device, type DeviceEffects, systemEffects } from "../device.ts";
import { Exit, isLinkdError } from "../errors.ts";
import { RecordType, USER_RECORDS } from "../records/types.ts";
import { VERSION } from "../version.ts";
import { oneLine } from "../text.ts";
import { systemClock } from "../clock.ts";
import { type Command, helpText, parseArgs, USAGE_TEXT } from "./args.ts";
import { checkIdentityInputs, encodeEnvelope, type SignedIdentity } from "../records/identity.ts";

// Each command's own code (the daemon, status, provisioning) is loaded when that command runs:
// evaluating modules costs boot time on a small SoC, and `linkd run` needs none of the others.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env(name: string): string | undefined;
  now(): number;
  effects: DeviceEffects;
}

export const systemIo: Io = {
  out: (t) => console.log(t),
  err: (t) => console.error(t),
  env: (n) => Deno.env.get(n),
  now: () => Date.now(),
  effects: systemEffects,
};

/** EX_SOFTWARE: a bug in linkd, not in its input. */
const EXIT_INTERNAL = 70;

export async function main(argv: readonly string[], io: Io = systemIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    if (isLinkdError(e)) {
      io.err(`linkd: ${oneLine(e.message, Infinity, "each")}`);
      return e.exitCode;
    }
    const name = e instanceof Error ? e.name : typeof e;
    io.err(`linkd: internal error (${name}); please report it with the command that caused it`);
    return EXIT_INTERNAL;
  }
}

function withDevice<T>(
  flag: string | undefined,
  io: Io,
  fn: (d: Device) => T,
  options: { readOnly?: boolean } = {},
): T {
  const config = loadConfig(configPath(flag, io.env));
  const device = Device.open(config, io.effects, options);
  try {
    return fn(device);
  } finally {
    device.close();
  }
}

/**
 * Opens the device for a command that writes: waits a moment for a running daemon, no more
 * (exit 75; the message names `busCommand` when the daemon takes the command on the bus).
 */
async function withWriter<T>(
  flag: string | undefined,
  io: Io,
  fn: (d: Device) => T,
  busCommand?: string,
): Promise<T> {
  const config = loadConfig(configPath(flag, io.env));
  const device = await Device.openForWrite(
    config,
    io.effects,
    busCommand === undefined ? {} : { busCommand },
  );
  try {
    return fn(device);
  } finally {
    device.close();
  }
}

/**
 * Runs `fn` with the line's seed from the key file at `path` (undefined without one), then
 * zero-fills the seed and the file's bytes, also when `fn` or parsing throws.
 */
export async function withLineKey<T>(
  path: string | undefined,
  fn: (lineSeed: Uint8Array | undefined) => T | Promise<T>,
  read?: (path: string) => Uint8Array,
): Promise<T> {
  if (path === undefined) return await fn(undefined);
  let raw: Uint8Array | undefined;
  let seed: Uint8Array | undefined;
  try {
    // The file's mode, type and size are checked there (provision/line_files.ts).
    raw = (read ?? (await import("../provision/line_files.ts")).readLineKeyFile)(path);
    const { parseLineKey } = await import("../provision/line_signature.ts");
    seed = parseLineKey(raw, path);
    return await fn(seed); // wiped only once provisioning is over
  } finally {
    seed?.fill(0);
    raw?.fill(0);
  }
}

type IdentityState = "provisioned" | "unprovisioned" | "unreadable";

/** What can be said of the device's identity, without letting a damaged one throw. */
function identityState(d: Device): IdentityState {
  try {
    if (d.store.health.lostKeys.includes(RecordType.IDENTITY)) return "unreadable";
    // Provisioned once the OTP holds a root key: a missing identity record needs repair.
    if (!d.isProvisioned()) return "unprovisioned";
    return d.vault().identity() ? "provisioned" : "unreadable";
  } catch {
    return "unreadable";
  }
}

/**
 * Deletes the records of `types` without the vault (no identity or root key is needed), then
 * scrubs the flash so that nothing of them remains. True when any of them was there, readable
 * or damaged.
 */
function forget(d: Device, types: readonly RecordType[]): boolean {
  const there = new Set([...d.store.keys(), ...d.store.health.lostKeys]);
  const had = types.some((t) => there.has(t));
  for (const t of types) d.store.delete(t);
  d.store.scrub();
  return had;
}

const NEEDS_REPAIR = "cannot be read: the device needs repair (see linkd status)";

async function dispatch(argv: readonly string[], io: Io): Promise<number> {
  const cmd = parseArgs(argv);
  switch (cmd.cmd) {
    case "help":
      io.out(cmd.topic === undefined ? USAGE_TEXT.trimEnd() : helpText(cmd.topic));
      return Exit.OK;
    case "usage": // bare `linkd`: a command line that asks for nothing
      // The usage on stdout; stderr gets the contract's one line for a non-zero exit.
      io.out(USAGE_TEXT.trimEnd());
      io.err("linkd: no subcommand given; see 'linkd --help'");
      return Exit.USAGE;
    case "version":
      io.out(`linkd ${VERSION}`);
      return Exit.OK;
    case "run":
      return await runCommand(cmd.config, io);
    case "status": {
      const { formatStatus, statusReport } = await import("../status.ts");
      // Read only, without the lock: status answers while the daemon runs.
      return withDevice(cmd.config, io, (d) => {
        const r = statusReport(d);
        io.out(cmd.json ? JSON.stringify(r) : formatStatus(r, io.now()));
        return Exit.OK;
      }, { readOnly: true });
    }
    case "provision":
    case "repair":
      return await lineCommand(cmd, io);
    case "logout":
      // The tokens are deleted first, without the vault: a damaged or missing identity, or an
      // unreadable OTP, must not keep the user's tokens on the device.
      return await withWriter(cmd.config, io, (d) => {
        const had = forget(d, [RecordType.TOKENS]);
        const state = identityState(d);
        if (!had && state === "unprovisioned") {
          io.out("Nothing to forget: the device is not provisioned");
          return Exit.OK;
        }
        const done = had
          ? "Forgot the user's tokens"
          : "Nothing to forget: no user tokens were stored";
        const id = state === "provisioned"
          ? "the device identity is kept"
          : state === "unprovisioned"
          ? "the device is not provisioned"
          : `the device identity ${NEEDS_REPAIR}`;
        io.out(`${done}; ${id}`);
        return Exit.OK;
      }, "logout"); // beside the daemon: P/cmd/logout does it
    case "factory-reset":
      return await withWriter(cmd.config, io, (d) => {
        const had = forget(d, USER_RECORDS);
        const state = identityState(d);
        const done = had
          ? "Forgot everything a user did"
          : "Nothing to forget: no user records were stored";
        const id = state === "provisioned"
          ? "the factory identity is kept"
          : state === "unprovisioned"
          ? "the device is not provisioned"
          : `the factory identity ${NEEDS_REPAIR}`;
        io.out(`${done}; ${id}`);
        return Exit.OK;
      });
  }
}

/**
 * `provision` (the factory line) and `repair` (the rework station), in one order: the line's
 * inputs and --record-out (never overwritten: a path that exists is refused before anything is
 * written), then the device's refusals on a read-only open where the writer's open would create
 * or fill a missing or empty flash (so a refused call leaves every file as it was), then the
 * write under the lock. The line key's seed and the key file's bytes are wiped when this ends.
 */
async function lineCommand(
  cmd: Extract<Command, { cmd: "provision" | "repair" }>,
  io: Io,
): Promise<number> {
  const { provisionReport } = await import("../provision/line_signature.ts");
  const steps = await import("../provision/provision.ts");
  const { checkRecordOut, writeRecordOut } = await import("../provision/line_files.ts");
  const check = cmd.cmd === "provision" ? steps.checkProvision : steps.checkRepair;
  return await withLineKey(cmd.lineKey, (lineSeed) => {
    checkIdentityInputs(cmd.serial, cmd.productId, cmd.clientId);
    const recordOut = cmd.recordOut;
    if (recordOut !== undefined) checkRecordOut(recordOut);
    const probe = { serial: cmd.serial, productId: cmd.productId, clientId: cmd.clientId };
    withDevice(cmd.config, io, (d) => {
      if (d.flashFile !== "present") check(d, probe);
    }, { readOnly: true });
    return withWriter(cmd.config, io, (d) => {
      const input = { ...probe, ...(lineSeed ? { lineSeed } : {}) };
      let wrote = false;
      const beforeCommit = (signed: SignedIdentity) => {
        if (recordOut === undefined) return;
        writeRecordOut(recordOut, encodeEnvelope(signed));
        wrote = true;
      };
      let signed: SignedIdentity;
      try {
        if (cmd.cmd === "provision") {
          const r = steps.provision(d, input, io.now, beforeCommit);
          signed = r.signed;
          if (r.resumed) {
            io.err(
              "linkd: note: the OTP held a root key from an interrupted provisioning; it was kept",
            );
          }
        } else {
          const r = steps.repair(d, input, io.now, beforeCommit);
          signed = r.signed;
          if (!r.repaired) {
            io.err("linkd: note: nothing to repair: the identity and store are whole");
          }
        }
      } catch (e) {
        // The identity was not committed: the record this run wrote goes too (it names a time
        // the device never got), so the line's retry with the same path is not refused.
        if (wrote) removeQuietly(recordOut!);
        throw e;
      }
      io.out(JSON.stringify(provisionReport(signed)));
      return Exit.OK;
    });
  });
}

/** Removes `path`, a file this run created; a failure to remove it does not hide the cause. */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // the error being thrown says what went wrong
  }
}

/**
 * `linkd run`: the daemon, until SIGTERM or SIGINT. Its lines carry sd-daemon level prefixes
 * when stderr is the journal (src/daemon/log.ts); a failure that ends it is logged as `err`.
 *
 * SIGHUP (systemd's ExecReload) reads the config file again, validated as at boot. A bad one is
 * refused with one `err` line and the daemon runs on unchanged. A good one is applied whole by
 * restarting the daemon loop in this process (same PID): the code is taken down, the flash
 * flushed and closed, the bus closed (keeping the last state, not `offline`, when the broker
 * and prefix stay the same; else the old prefix gets `offline`), then runDaemon starts again
 * with the new config: it reconnects, serves a sealed token at once, or pairs again.
 */
async function runCommand(flag: string | undefined, io: Io): Promise<number> {
  // First of all: SIGHUP's default action would end the process (no offline, no flash flush).
  let onHangup = () => {}; // until the loop runs, the config is read anyway
  const hangup = () => onHangup();
  Deno.addSignalListener("SIGHUP", hangup);
  try {
    return await runLoop(flag, io, (fn) => onHangup = fn);
  } finally {
    Deno.removeSignalListener("SIGHUP", hangup);
  }
}

async function runLoop(
  flag: string | undefined,
  io: Io,
  onHangup: (fn: () => void) => void,
): Promise<number> {
  const [{ runDaemon }, { systemdNotifier }, { startWatchdog }, logs] = await Promise.all([
    import("../daemon/run.ts"),
    import("../daemon/sd_notify.ts"),
    import("../daemon/watchdog.ts"),
    import("../daemon/log.ts"),
  ]);
  const log = logs.levelledLog(
    (line) => io.err(oneLine(line, Infinity, "each")),
    logs.stderrIsJournal(io.env),
  );
  const path = configPath(flag, io.env);
  let config;
  try {
    config = loadConfig(path);
  } catch (e) {
    if (!isLinkdError(e)) throw e;
    log(`linkd: ${e.message}`, "err");
    return e.exitCode;
  }
  const stop = new AbortController();
  // Aborted by SIGTERM/SIGINT, or by a SIGHUP that read a good config into `reload.next`.
  let cycle = new AbortController();
  const reload: { next: Config | null } = { next: null };
  const onSignal = () => {
    stop.abort();
    cycle.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  // Under systemd: READY=1 once the first state is on the bus, WATCHDOG=1 at half its period.
  const notifier = systemdNotifier(io.env);
  const tell = async (state: string) => {
    if (notifier && !(await notifier.notify(state))) {
      log(`linkd: cannot notify systemd (${notifier.lastError ?? "unknown"})`, "warning");
    }
  };
  onHangup(() => {
    if (stop.signal.aborted) return;
    try {
      reload.next = loadConfig(path);
    } catch (e) {
      const why = isLinkdError(e) ? e.message : `internal error (${(e as Error)?.name})`;
      log(`linkd: SIGHUP: kept the running configuration: ${why}`, "err");
      return;
    }
    log(`linkd: SIGHUP: applying the configuration of ${path}`, "notice");
    void tell("RELOADING=1");
    cycle.abort();
  });
  let watching = false;
  try {
    for (;;) {
      const running: Config = config;
      const code = await runDaemon({
        config: running,
        signal: cycle.signal,
        log,
        terminal: (text) => io.out(text),
        keepState: () =>
          !stop.signal.aborted && reload.next !== null &&
          reload.next.bus.url === running.bus.url && reload.next.bus.prefix === running.bus.prefix,
        onReady: () => {
          void tell("READY=1");
          if (notifier && !watching) {
            watching = true; // one watchdog for the process, across reloads
            startWatchdog(notifier, io.env, systemClock, stop.signal);
          }
        },
        onStatus: (status) => void tell(`STATUS=${status}`),
      });
      if (stop.signal.aborted || reload.next === null) return code;
      config = reload.next;
      reload.next = null;
      cycle = new AbortController();
    }
  } catch (e) {
    if (!isLinkdError(e)) throw e;
    log(`linkd: ${e.message}`, "err");
    return e.exitCode;
  } finally {
    onHangup(() => {});
    if (notifier) await tell("STOPPING=1");
    notifier?.close();
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}
