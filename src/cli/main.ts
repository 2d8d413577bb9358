/**
 * linkd's command line (CONTRACT.md section 1): parses, runs one subcommand, and turns every
 * failure into one line on stderr and a sysexits code. Never a stack trace, never a secret.
 */
import { type Config, configPath, loadConfig } from "../config.ts";
import { Device, type DeviceEffects, systemEffects } from "../device.ts";
import { Code, Exit, isLinkdError, LinkdError } from "../errors.ts";
import { RecordType, USER_RECORDS } from "../records/types.ts";
import { VERSION } from "../version.ts";
import { oneLine } from "../text.ts";
import { systemClock } from "../clock.ts";
import { type Command, helpText, parseArgs, USAGE_TEXT } from "./args.ts";
import { checkIdentityInputs, encodeEnvelope, type SignedIdentity } from "../records/identity.ts";
import type { LineSigner } from "../provision/line_signer.ts";

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
 * Runs `fn` with the line's signer for `--line-key` (undefined without one): a key file or a
 * PKCS #11 URI (provision/line_signer.ts; the file's bytes are wiped as soon as it is read).
 * The signer is closed when `fn` ends, also when it throws: a seed is wiped, an HSM session
 * logged out and closed.
 */
export async function withLineKey<T>(
  value: string | undefined,
  fn: (line: LineSigner | undefined) => T | Promise<T>,
  open?: (value: string) => LineSigner,
): Promise<T> {
  if (value === undefined) return await fn(undefined);
  const line = (open ?? (await import("../provision/line_signer.ts")).openLineSigner)(value);
  try {
    return await fn(line); // closed only once provisioning is over
  } finally {
    line.close();
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
    case "ledger":
      return await ledgerCommand(cmd, io);
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
 *
 * With `--ledger` (provision only; src/ledger/ledger.ts has the rules): the ledger is opened
 * first (unreachable: 69, nothing touched), the device's refusals are checked on a read-only
 * open, the serial is reserved (taken: 73, the device untouched), the device is written, and
 * the reservation is confirmed with its record before the JSON line is printed. A device that
 * already holds the identity asked for (the station died after its commit) confirms this
 * station's reservation from its own record, then is refused with 73 as before.
 */
async function lineCommand(
  cmd: Extract<Command, { cmd: "provision" | "repair" }>,
  io: Io,
): Promise<number> {
  const { provisionReport } = await import("../provision/line_signature.ts");
  const steps = await import("../provision/provision.ts");
  const { checkRecordOut, writeRecordOut } = await import("../provision/line_files.ts");
  const check = cmd.cmd === "provision" ? steps.checkProvision : steps.checkRepair;
  return await withLineKey(cmd.lineKey, async (line) => {
    checkIdentityInputs(cmd.serial, cmd.productId, cmd.clientId);
    const recordOut = cmd.recordOut;
    if (recordOut !== undefined) checkRecordOut(recordOut);
    const station = cmd.station;
    if (station !== undefined) (await import("../ledger/ledger.ts")).checkStation(station);
    const ledger = cmd.ledger === undefined
      ? null
      : await (await import("../ledger/open.ts")).openLedger(cmd.ledger);
    try {
      const probe = { serial: cmd.serial, productId: cmd.productId, clientId: cmd.clientId };
      let held: SignedIdentity | null = null;
      let deviceKey: Uint8Array | null = null;
      let refusal: unknown = null;
      withDevice(cmd.config, io, (d) => {
        if (ledger !== null) held = heldIdentity(d);
        if (d.flashFile !== "present" || ledger !== null) {
          try {
            const vault = check(d, probe);
            if (ledger !== null && typeof vault === "object") {
              deviceKey = steps.devicePublicKey(vault);
            }
          } catch (e) {
            refusal = e;
          }
        }
      }, { readOnly: true });
      if (ledger !== null && cmd.cmd === "repair") {
        // The rework station: the ledger must not have the serial on another device.
        if (refusal !== null) throw refusal;
        if (deviceKey !== null) await ledger.checkRepair(cmd.serial, deviceKey);
      } else if (ledger !== null && station !== undefined) {
        const h = held as SignedIdentity | null;
        if (h !== null && h.identity.serial === cmd.serial) {
          const how = await ledger.recover(station, h);
          if (how === "confirmed") {
            io.err(
              `linkd: note: the device holds serial ${cmd.serial}: this station's reservation in the ledger was confirmed from its record`,
            );
          }
        }
        if (refusal !== null) throw refusal;
        const how = await ledger.reserve({
          serial: cmd.serial,
          product_id: cmd.productId,
          client_id: cmd.clientId,
          station,
          reserved_at: io.now(),
        });
        if (how === "resumed") {
          io.err(
            `linkd: note: serial ${cmd.serial} was reserved by this station in the ledger and not confirmed; resumed`,
          );
        }
      }
      if (refusal !== null) throw refusal;
      const signed = await withWriter(cmd.config, io, (d) => {
        const input = { ...probe, ...(line ? { lineSigner: line } : {}) };
        let wrote = false;
        const beforeCommit = (signed: SignedIdentity) => {
          if (recordOut === undefined) return;
          writeRecordOut(recordOut, encodeEnvelope(signed));
          wrote = true;
        };
        try {
          if (cmd.cmd === "provision") {
            const r = steps.provision(d, input, io.now, beforeCommit);
            if (r.resumed) {
              io.err(
                "linkd: note: the OTP held a root key from an interrupted provisioning; it was kept",
              );
            }
            return r.signed;
          }
          const r = steps.repair(d, input, io.now, beforeCommit);
          if (!r.repaired) {
            io.err("linkd: note: nothing to repair: the identity and store are whole");
          }
          return r.signed;
        } catch (e) {
          // The identity was not committed: the record this run wrote goes too (it names a time
          // the device never got), so the line's retry with the same path is not refused.
          if (wrote) removeQuietly(recordOut!);
          throw e;
        }
      });
      if (ledger !== null && station !== undefined) {
        if (cmd.cmd === "repair") await ledger.repaired(station, signed);
        else await ledger.confirm(station, signed);
      }
      io.out(JSON.stringify(provisionReport(signed)));
      return Exit.OK;
    } finally {
      await ledger?.close();
    }
  });
}

/**
 * `linkd ledger export`: one JSON line per confirmed device (src/ledger/report.ts). `linkd ledger
 * verify`: one line per problem, then a summary; exit 0 when all hold, else LEDGER_DATA (65).
 */
async function ledgerCommand(cmd: Extract<Command, { cmd: "ledger" }>, io: Io): Promise<number> {
  const { openLedger } = await import("../ledger/open.ts");
  const report = await import("../ledger/report.ts");
  const ledger = await openLedger(cmd.ledger);
  try {
    const rows = await ledger.rows(cmd.action === "export" ? cmd.since : undefined);
    if (cmd.action === "export") {
      for (const row of rows) {
        const line = report.exportLine(row);
        if (line !== null) io.out(line);
      }
      return Exit.OK;
    }
    const problems = report.verifyRows(rows);
    for (const p of problems) io.out(`${p.serial}: ${p.what}`);
    const devices = rows.filter((r) => r.provisioned_at !== null).length;
    if (problems.length === 0) {
      io.out(
        `ok: ${devices} devices, every record signed by a line key and verified, no gaps, no duplicates`,
      );
      return Exit.OK;
    }
    throw new LinkdError(
      Code.LEDGER_DATA,
      `Cannot vouch for the plant's ledger: ${problems.length} problems in ${rows.length} rows (${devices} devices); each is listed on stdout`,
    );
  } finally {
    await ledger.close();
  }
}

/** The identity a device holds (signed record and all), or null: none, or it cannot be read. */
function heldIdentity(d: Device): SignedIdentity | null {
  try {
    return d.isProvisioned() ? d.vault().identity() : null;
  } catch {
    return null;
  }
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
