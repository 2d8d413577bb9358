/**
 * linkd's command line (CONTRACT.md section 1): parses, runs one subcommand, and turns every
 * failure into one line on stderr and a sysexits code. Never a stack trace, never a secret.
 */
import { configPath, loadConfig } from "../config.ts";
import { Device, type DeviceEffects, systemEffects } from "../device.ts";
import { Code, type ErrorCode, Exit, isLinkdError, LinkdError } from "../errors.ts";
import {
  checkIdentityInputs,
  encodeEnvelope,
  parseLineKey,
  provisionReport,
} from "../provision/identity.ts";
import { provision } from "../provision/provision.ts";
import { formatStatus, statusReport } from "../status.ts";
import { RecordType, USER_RECORDS } from "../store/vault.ts";
import { VERSION } from "../version.ts";
import { parseArgs, USAGE_TEXT } from "./args.ts";
import { dirname } from "node:path";

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

export function main(argv: readonly string[], io: Io = systemIo): number {
  try {
    return dispatch(argv, io);
  } catch (e) {
    if (isLinkdError(e)) {
      io.err(`linkd: ${e.message}`);
      return e.exitCode;
    }
    const name = e instanceof Error ? e.name : typeof e;
    io.err(`linkd: internal error (${name}); please report it with the command that caused it`);
    return EXIT_INTERNAL;
  }
}

function withDevice<T>(flag: string | undefined, io: Io, fn: (d: Device) => T): T {
  const config = loadConfig(configPath(flag, io.env));
  const device = Device.open(config, io.effects);
  try {
    return fn(device);
  } finally {
    device.close();
  }
}

function readFile(path: string, missing: ErrorCode, what: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new LinkdError(missing, `Cannot read ${what} ${path}: file not found`);
    }
    throw new LinkdError(Code.IO, `Cannot read ${what} ${path}: ${(e as Error).name}`);
  }
}

function dispatch(argv: readonly string[], io: Io): number {
  const cmd = parseArgs(argv);
  switch (cmd.cmd) {
    case "help":
      io.out(USAGE_TEXT);
      return Exit.OK;
    case "version":
      io.out(`linkd ${VERSION}`);
      return Exit.OK;
    case "run":
      io.err(
        "linkd: Cannot start the daemon: this build has no bus or code-pair flow yet; it offers provision, status, logout and factory-reset",
      );
      return Exit.UNAVAILABLE;
    case "status":
      return withDevice(cmd.config, io, (d) => {
        const r = statusReport(d);
        io.out(cmd.json ? JSON.stringify(r) : formatStatus(r, io.now()));
        return Exit.OK;
      });
    case "provision": {
      const lineSeed = cmd.lineKey === undefined
        ? undefined
        : parseLineKey(readFile(cmd.lineKey, Code.LINE_KEY_MISSING, "line key"), cmd.lineKey);
      // Everything the line passed is checked before the device is touched.
      checkIdentityInputs(cmd.serial, cmd.productId, cmd.clientId);
      const recordOut = cmd.recordOut;
      if (recordOut !== undefined) checkFolder(recordOut);
      return withDevice(cmd.config, io, (d) => {
        const input = {
          serial: cmd.serial,
          productId: cmd.productId,
          clientId: cmd.clientId,
          ...(lineSeed ? { lineSeed } : {}),
        };
        const { signed, resumed } = provision(d, input, io.now, (s) => {
          if (recordOut !== undefined) writeAtomically(recordOut, encodeEnvelope(s));
        });
        lineSeed?.fill(0);
        if (resumed) {
          io.err(
            "linkd: note: the OTP held a root key from an interrupted provisioning; it was kept",
          );
        }
        io.out(JSON.stringify(provisionReport(signed)));
        return Exit.OK;
      });
    }
    case "logout":
      return withDevice(cmd.config, io, (d) => {
        if (d.otp.state() !== "programmed" || !d.vault().identity()) {
          io.out("Nothing to forget: the device is not provisioned");
          return Exit.OK;
        }
        d.vault().delete(RecordType.TOKENS);
        d.store.scrub();
        io.out("Forgot the user's tokens; the device identity is kept");
        return Exit.OK;
      });
    case "factory-reset":
      return withDevice(cmd.config, io, (d) => {
        if (d.otp.state() === "programmed" && d.vault().identity()) {
          for (const t of USER_RECORDS) d.vault().delete(t);
        }
        d.store.scrub();
        io.out("Forgot everything a user did; the factory identity is kept");
        return Exit.OK;
      });
  }
}

function checkFolder(path: string): void {
  try {
    if (Deno.statSync(dirname(path)).isDirectory) return;
  } catch {
    // reported below
  }
  throw new LinkdError(
    Code.IO,
    `Cannot write the record to ${path}: folder ${dirname(path)} does not exist`,
  );
}

function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    Deno.writeFileSync(tmp, bytes);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* nothing to clean */ }
    throw new LinkdError(Code.IO, `Cannot write the record to ${path}: ${(e as Error).name}`);
  }
}
