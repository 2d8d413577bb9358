/**
 * One factory station for the ledger bench (ledger_bench.ts): devices provisioned in the order
 * `linkd provision --ledger URL --station NAME` takes for each (src/cli/main.ts lineCommand),
 * in process: the device's refusals checked on a read-only open, the serial reserved in the
 * ledger (a serial the ledger has, LEDGER_TAKEN, is skipped with the device untouched), the
 * device provisioned under the writer's lock and closed, the reservation confirmed. Without a
 * ledger, the same steps less the ledger's. Each device is a fresh flash and OTP file in `dir`.
 *
 * Run as a child process it is one of two stations sharing one PostgreSQL. Args: station name,
 * first and last serial number (inclusive; last < first runs downwards), the ledger's URL, the
 * folder for its devices. It provisions a few devices without the ledger to warm up, prints
 * `ready`, waits for a line on stdin, runs its serials, and prints one JSON line: the station,
 * the serials it provisioned, how many the ledger had taken, and its start and end (Unix ms).
 */
import nacl from "tweetnacl";
import { parseConfig } from "../../src/config.ts";
import { Device } from "../../src/device.ts";
import { Code, LinkdError } from "../../src/errors.ts";
import type { Ledger } from "../../src/ledger/ledger.ts";
import { openLedger } from "../../src/ledger/open.ts";
import { type LineSigner, seedSigner } from "../../src/provision/line_signer.ts";
import { checkProvision, provision } from "../../src/provision/provision.ts";

export const PRODUCT_ID = "speaker";
export const CLIENT_ID = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef";

/** The serial of number `n` under `prefix`. */
export function serialOf(prefix: string, n: number): string {
  return `${prefix}-${String(n).padStart(6, "0")}`;
}

export interface StationRun {
  /** The serials this station provisioned (and confirmed, with a ledger). */
  provisioned: string[];
  /** Serials skipped because the ledger had them. */
  taken: number;
  /** Time spent in the ledger's reserve and confirm, ms. */
  ledgerMs: number;
  /** Start and end of the run, Unix milliseconds. */
  start: number;
  end: number;
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Provisions a fresh device in `dir` for each of `serials`, as the station `station` would. */
export async function runStation(
  dir: string,
  station: string,
  serials: readonly string[],
  ledger: Ledger | null,
  lineSigner: LineSigner,
): Promise<StationRun> {
  const provisioned: string[] = [];
  let taken = 0;
  let ledgerMs = 0;
  const start = nowMs();
  for (const serial of serials) {
    const config = parseConfig(
      JSON.stringify({
        flash: { path: `${dir}/${station}-${serial}.img` },
        keys: { otpPath: `${dir}/${station}-${serial}.otp` },
      }),
      `${dir}/linkd.json`,
    );
    const probe = { serial, productId: PRODUCT_ID, clientId: CLIENT_ID };
    const ro = Device.open(config, undefined, { readOnly: true });
    try {
      if (ledger !== null && ro.isProvisioned()) {
        throw new Error(`Cannot bench serial ${serial}: its device is provisioned already`);
      }
      checkProvision(ro, probe);
    } finally {
      ro.close();
    }
    if (ledger !== null) {
      const t = performance.now();
      try {
        await ledger.reserve({
          serial,
          product_id: PRODUCT_ID,
          client_id: CLIENT_ID,
          station,
          reserved_at: Date.now(),
        });
      } catch (e) {
        if (e instanceof LinkdError && e.code === Code.LEDGER_TAKEN) {
          taken++;
          continue;
        }
        throw e;
      } finally {
        ledgerMs += performance.now() - t;
      }
    }
    const d = await Device.openForWrite(config);
    let signed;
    try {
      signed = provision(d, { ...probe, lineSigner }, Date.now).signed;
    } finally {
      d.close();
    }
    if (ledger !== null) {
      const t = performance.now();
      await ledger.confirm(station, signed);
      ledgerMs += performance.now() - t;
    }
    provisioned.push(serial);
  }
  return { provisioned, taken, ledgerMs, start, end: nowMs() };
}

async function readLine(): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || value.includes(10)) return;
    }
  } finally {
    reader.releaseLock();
  }
}

if (import.meta.main) {
  const [station, firstArg, lastArg, url, dir] = Deno.args as [
    string,
    string,
    string,
    string,
    string,
  ];
  const first = Number(firstArg);
  const last = Number(lastArg);
  const serials: string[] = [];
  const step = last >= first ? 1 : -1;
  for (let n = first; n !== last + step; n += step) serials.push(serialOf("ST", n));
  const lineSigner = seedSigner(nacl.randomBytes(32));
  const ledger = await openLedger(url);
  try {
    const warm = Array.from({ length: 3 }, (_, i) => serialOf(`WARM-${station}`, i));
    await runStation(dir, station, warm, null, lineSigner);
    console.log("ready");
    await readLine();
    console.log(
      JSON.stringify({ station, ...await runStation(dir, station, serials, ledger, lineSigner) }),
    );
  } finally {
    await ledger.close();
    lineSigner.close();
  }
}
