/**
 * Helpers for tests that run the `linkd` executable as a real subprocess: a scratch folder per
 * test file, device folders with a config file, a runner that keeps a transcript of every
 * command's output (so a test can search all of it for secrets), the `status` and `provision`
 * command lines, Python peers, and byte searches. The shared provisioned device, the bad-input
 * cases, the secret search and in-process access to a device are in the `cli_*.ts` files beside
 * this one.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";

/** The repository root, with a trailing slash. */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The entry point of the `linkd` executable. */
export const MAIN = `${ROOT}src/main.ts`;
/** Debian's Python, which has python3-nacl and python3-cbor2. */
export const PYTHON = "/usr/bin/python3";

export interface Run {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every run of `linkd` in this process, in order. */
export const transcript: Run[] = [];

const decoder = new TextDecoder();

/** The parent's environment without LINKD_CONFIG, plus NO_COLOR=1 and `extra`. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.LINKD_CONFIG;
  return { ...env, NO_COLOR: "1", ...extra };
}

/**
 * Runs `linkd ARGS` in `cwd` and waits for it; with `timeoutMs`, kills it (SIGTERM) when it
 * takes longer, for commands that could hang (a read that never ends).
 */
export async function linkd(
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
  timeoutMs?: number,
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, ...args],
    cwd,
    env: childEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
  }).output();
  const run: Run = {
    args,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  transcript.push(run);
  return run;
}

/** Shows a run in an assertion message. */
export function show(r: Run): string {
  return `linkd ${JSON.stringify(r.args)} -> ${r.code}\nstdout: ${
    JSON.stringify(r.stdout)
  }\nstderr: ${JSON.stringify(r.stderr)}`;
}

/** Asserts that `r` printed no stack trace and no uncaught-error report anywhere. */
export function assertNoTrace(r: Run): void {
  for (const text of [r.stdout, r.stderr]) {
    assert.not.ok(/^\s+at /m.test(text), `stack trace in output of ${show(r)}`);
    assert.not.ok(text.includes("error: Uncaught"), `uncaught error in ${show(r)}`);
    assert.not.ok(text.includes("internal error"), `internal error in ${show(r)}`);
  }
}

/**
 * Asserts a failure as CONTRACT.md section 1 promises it: exit `code`, nothing on stdout, exactly
 * one non-empty line on stderr, no stack trace. Returns that line.
 */
export function assertFails(r: Run, code: number, mentions?: string): string {
  assert.is(r.code, code, show(r));
  assert.is(r.stdout, "", `stdout must be empty: ${show(r)}`);
  assertNoTrace(r);
  assert.ok(r.stderr.endsWith("\n"), `stderr must end its line: ${show(r)}`);
  const lines = r.stderr.slice(0, -1).split("\n");
  assert.is(lines.length, 1, `exactly one line on stderr: ${show(r)}`);
  const line = lines[0]!;
  assert.ok(line.trim().length > 0, `the stderr line must not be blank: ${show(r)}`);
  if (mentions !== undefined) {
    assert.ok(line.includes(mentions), `expected ${JSON.stringify(mentions)} in: ${show(r)}`);
  }
  return line;
}

/** Asserts exit 0, an empty stderr and no trace; returns stdout. */
export function assertOk(r: Run): string {
  assert.is(r.code, 0, show(r));
  assert.is(r.stderr, "", `stderr must be empty: ${show(r)}`);
  assertNoTrace(r);
  return r.stdout;
}

/** Parses stdout that must be exactly one line holding one JSON object. */
export function oneJsonLine(r: Run): Record<string, unknown> {
  const out = assertOk(r);
  assert.ok(out.endsWith("\n"), `one line: ${show(r)}`);
  const lines = out.slice(0, -1).split("\n");
  assert.is(lines.length, 1, `exactly one line on stdout: ${show(r)}`);
  const v: unknown = JSON.parse(lines[0]!);
  assert.type(v, "object");
  assert.ok(v !== null && !Array.isArray(v), show(r));
  return v as Record<string, unknown>;
}

export interface DeviceDir {
  readonly dir: string;
  readonly config: string;
  readonly flash: string;
  readonly otp: string;
}

/** The config the tests use: flash and OTP next to the config file. */
export const CONFIG_TEXT = JSON.stringify({
  flash: { path: "flash.img" },
  keys: { otpPath: "otp.bin" },
});

let deviceCount = 0;

/** A fresh device folder under `root` holding only its config file. */
export function makeDevice(root: string, configText = CONFIG_TEXT): DeviceDir {
  const dir = `${root}/dev${++deviceCount}`;
  Deno.mkdirSync(dir);
  const d = deviceAt(dir);
  Deno.writeTextFileSync(d.config, configText);
  return d;
}

export function deviceAt(dir: string): DeviceDir {
  return {
    dir,
    config: `${dir}/linkd.json`,
    flash: `${dir}/flash.img`,
    otp: `${dir}/otp.bin`,
  };
}

/** A new device folder under `root` with copies of every file of `src` (a cloned device). */
export function copyDevice(src: DeviceDir, root: string): DeviceDir {
  const dir = `${root}/dev${++deviceCount}`;
  Deno.mkdirSync(dir);
  for (const e of Deno.readDirSync(src.dir)) {
    if (e.isFile) Deno.copyFileSync(`${src.dir}/${e.name}`, `${dir}/${e.name}`);
  }
  return deviceAt(dir);
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Names of the entries of a folder, sorted. */
export function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** The full contents of the device's flash and OTP files (null when missing). */
export function snapshot(d: DeviceDir): { flash: Uint8Array | null; otp: Uint8Array | null } {
  const read = (p: string) => exists(p) ? Deno.readFileSync(p) : null;
  return { flash: read(d.flash), otp: read(d.otp) };
}

export function assertSameBytes(a: Uint8Array | null, b: Uint8Array | null, what: string): void {
  if (a === null || b === null) {
    assert.is(a === null, b === null, `${what}: one is missing`);
    return;
  }
  assert.is(a.length, b.length, `${what}: length`);
  const i = a.findIndex((x, k) => x !== b[k]);
  assert.is(i, -1, `${what}: first difference at byte ${i}`);
}

export function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

export function fromHexString(s: string): Uint8Array {
  assert.match(s, /^([0-9a-f]{2})*$/);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function base64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/** Bytes as a string of code units 0..255, for substring search in binary data. */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

/** Every `n`-long window of `s` (the whole of `s` when shorter). */
export function windows(s: string, n: number): string[] {
  if (s.length <= n) return [s];
  const out: string[] = [];
  for (let i = 0; i + n <= s.length; i++) out.push(s.slice(i, i + n));
  return out;
}

/** The first `n`-long window of `needle` found in `haystack`, or null. */
export function findWindow(haystack: string, needle: string, n: number): string | null {
  for (const w of windows(needle, n)) if (haystack.includes(w)) return w;
  return null;
}

/** Runs a Python script with Debian's python3 (nacl and cbor2); returns stdout as JSON. */
export async function python(script: string, args: readonly string[]): Promise<unknown> {
  const out = await new Deno.Command(PYTHON, {
    args: ["-I", "-c", script, ...args],
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = decoder.decode(out.stdout);
  const stderr = decoder.decode(out.stderr);
  assert.is(out.code, 0, `python failed:\n${stderr}\n${stdout}`);
  return JSON.parse(stdout);
}

let scratch: string | null = null;

/**
 * Makes this test file's scratch folder (removed after its tests) and returns it; the command
 * helpers below run in it. Call it once, at the top of a test file that uses the default suite.
 */
export function useWork(prefix: string): string {
  assert.is(scratch, null, "useWork is called once per test file");
  const dir = Deno.makeTempDirSync({ prefix });
  test.after(() => {
    Deno.removeSync(dir, { recursive: true });
  });
  scratch = dir;
  return dir;
}

/** The folder `useWork` made. */
export function workFolder(): string {
  assert.ok(scratch !== null, "call useWork first");
  return scratch!;
}

/** The size of the emulated flash part the tests' config names (the config's default). */
export const FLASH_BYTES = 65536;
/** An OTP file of format 2: magic, root key, identity binding, check (src/seal/otp.ts). */
export const OTP_BYTES = 76;

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A token-like string: `prefix` and `n` random base64url characters. */
export function randomToken(prefix: string, n: number): string {
  const b = base64(randomBytes(Math.ceil(n * 3 / 4) + 3)).replace(/\+/g, "-").replace(
    /\//g,
    "_",
  ).replace(/=/g, "");
  return prefix + b.slice(0, n);
}

/** `linkd status` of a device, with `--json` unless `json` is false. */
export const status = (d: DeviceDir, json = true) =>
  linkd(["status", "--config", d.config, ...(json ? ["--json"] : [])], workFolder());

export interface ProvisionOptions {
  serial: string;
  productId?: string;
  clientId?: string;
  lineKey?: string;
  recordOut?: string;
}

/** The `linkd provision` command line for a device; product and client id have defaults. */
export function provisionArgs(d: DeviceDir, o: ProvisionOptions): string[] {
  return [
    "provision",
    "--config",
    d.config,
    "--serial",
    o.serial,
    "--product-id",
    o.productId ?? "Echo_Mini-1",
    "--client-id",
    o.clientId ?? "amzn1.application-oa2-client.5f3c0ffee0",
    ...(o.lineKey === undefined ? [] : ["--line-key", o.lineKey]),
    ...(o.recordOut === undefined ? [] : ["--record-out", o.recordOut]),
  ];
}

export const provisionCmd = (d: DeviceDir, o: ProvisionOptions) =>
  linkd(provisionArgs(d, o), workFolder());

/** The contract's status object of a fresh device. */
export const FRESH_STATUS = {
  provisioned: false,
  serial: null,
  product_id: null,
  client_id: null,
  device_public_key: null,
  linked: false,
  scopes: [],
  access_expires_at: null,
  store: { ok: true },
  // An extension to the contract's keys (consumers ignore keys they do not know).
  capabilities: { granted: [], denied: [] },
};

/** The root key an OTP file holds (bytes 4..36). */
export function rootKeyOf(d: DeviceDir): Uint8Array {
  const otp = Deno.readFileSync(d.otp);
  assert.is(otp.length, OTP_BYTES, "OTP file size");
  return otp.slice(4, 36);
}

/** Flips the bits `mask` of the byte at `offset` of a file. */
export function flipAt(path: string, offset: number, mask = 0x01): void {
  const b = Deno.readFileSync(path);
  b[offset] = b[offset]! ^ mask;
  Deno.writeFileSync(path, b);
}

/** status of a damaged device: exit 0 and store.ok false with a detail. */
export async function assertDamaged(d: DeviceDir): Promise<Record<string, unknown>> {
  const [j, h] = await Promise.all([status(d), status(d, false)]);
  const s = oneJsonLine(j);
  const store = s.store as { ok: unknown; detail?: unknown };
  assert.is(store.ok, false, show(j));
  assert.type(store.detail, "string");
  assert.ok((store.detail as string).length > 0);
  assert.not.match(store.detail as string, /\n/);
  assert.match(assertOk(h), /DAMAGED/);
  return s;
}
