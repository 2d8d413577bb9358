/**
 * Bad-input cases for the CLI tests: each runs a command line that must be refused on a device
 * folder holding only its config, and asserts the exit code, the one stderr line and that
 * nothing was created; a case marked `provisioned` runs again on a copy of the shared
 * provisioned device, which must stay byte for byte the same.
 */
import * as assert from "uvu/assert";
import {
  assertFails,
  assertSameBytes,
  copyDevice,
  type DeviceDir,
  exists,
  linkd,
  listing,
  makeDevice,
  provisionArgs,
  snapshot,
  workFolder,
} from "./cli.ts";
import { signed } from "./cli_signed.ts";

export interface BadCase {
  readonly name: string;
  readonly code: number;
  /** The command line; `d` is a device folder holding only its config. */
  readonly args: (d: DeviceDir) => string[];
  /** Something the stderr line must say. */
  readonly mentions?: (d: DeviceDir) => string;
  /** Prepares the device folder. */
  readonly setup?: (d: DeviceDir) => void;
  /** Also run it on a copy of a provisioned device (same exit code, nothing changed). */
  readonly provisioned?: boolean;
}

export const P = (d: DeviceDir, serial: string, ...more: string[]) => [
  ...provisionArgs(d, { serial }),
  ...more,
];

export function keyFile(name: string, bytes: Uint8Array | string) {
  return (d: DeviceDir) => {
    // Mode 0600: a key group or others may read is refused before its content is looked at.
    if (typeof bytes === "string") {
      Deno.writeTextFileSync(`${d.dir}/${name}`, bytes, { mode: 0o600 });
    } else Deno.writeFileSync(`${d.dir}/${name}`, bytes, { mode: 0o600 });
  };
}

export async function runBadCases(cases: readonly BadCase[]): Promise<void> {
  const work = workFolder();
  await Promise.all(cases.map(async (c) => {
    const d = makeDevice(work);
    c.setup?.(d);
    const files = listing(d.dir);
    const r = await linkd(c.args(d), work);
    const line = assertFails(r, c.code, c.mentions?.(d));
    assert.ok(line.startsWith("linkd: "), `${c.name}: ${line}`);
    assert.not.ok(exists(d.otp), `${c.name}: the OTP file must not be created`);
    // Every input is checked before the device is opened: a refused call creates nothing.
    assert.equal(listing(d.dir), files, `${c.name}: nothing created`);
    if (!c.provisioned) return;
    const p = copyDevice(signed(), work);
    c.setup?.(p);
    const before = snapshot(p);
    const pfiles = listing(p.dir);
    const rp = await linkd(c.args(p), work);
    assertFails(rp, c.code, c.mentions?.(p));
    const after = snapshot(p);
    assertSameBytes(after.flash, before.flash, `${c.name}: flash of a provisioned device`);
    assertSameBytes(after.otp, before.otp, `${c.name}: OTP of a provisioned device`);
    assert.equal(listing(p.dir), pfiles, `${c.name}: files of a provisioned device`);
  }));
}
