/**
 * The secret search of the CLI tests: the secrets a test file has seen (line seeds, root keys,
 * device seeds, tokens), and checks that none shows up, as hex, base64 or raw bytes, in a text,
 * in a flash image, or in any output of any `linkd` command the file ran (its transcript).
 */
import * as assert from "uvu/assert";
import { base64, type DeviceDir, findWindow, hex, latin1, show, transcript } from "./cli.ts";

const utf8 = new TextEncoder();

/** Secrets that must never show up in any output of any command. */
export const secrets: { name: string; bytes: Uint8Array }[] = [];
export const textSecrets: { name: string; text: string }[] = [];

/** Every way a secret could leak into a text (hex, base64, raw) that `text` must not hold. */
export function leakIn(text: string): string | null {
  const lower = text.toLowerCase();
  for (const s of secrets) {
    const w = findWindow(lower, hex(s.bytes), 32) ??
      findWindow(text, base64(s.bytes).slice(0, -4), 16) ??
      findWindow(text, latin1(s.bytes), 12);
    if (w !== null) return s.name;
  }
  for (const s of textSecrets) {
    const w = findWindow(text, s.text, 16) ??
      findWindow(lower, hex(utf8.encode(s.text)), 32) ??
      findWindow(text, base64(utf8.encode(s.text)), 24);
    if (w !== null) return s.name;
  }
  return null;
}

export function assertNoSecretIn(text: string, where: string): void {
  const name = leakIn(text);
  assert.is(name, null, `${name} appears in ${where}`);
}

/** Asserts the flash image holds no trace of the known secrets. */
export function assertNoSecretInFlash(d: DeviceDir): string {
  const image = latin1(Deno.readFileSync(d.flash));
  for (const s of secrets) {
    assert.is(findWindow(image, latin1(s.bytes), 16), null, `${s.name} in the flash image`);
    assert.is(findWindow(image.toLowerCase(), hex(s.bytes), 32), null, `${s.name} (hex) in flash`);
    assert.is(
      findWindow(image, base64(s.bytes).slice(0, -4), 16),
      null,
      `${s.name} (base64) in flash`,
    );
  }
  for (const s of textSecrets) {
    assert.is(findWindow(image, s.text, 16), null, `${s.name} in the flash image`);
    assert.is(
      findWindow(image.toLowerCase(), hex(utf8.encode(s.text)), 32),
      null,
      `${s.name} (hex) in flash`,
    );
    assert.is(
      findWindow(image, base64(utf8.encode(s.text)), 24),
      null,
      `${s.name} (base64) in flash`,
    );
  }
  return image;
}

/** What a test file expects to have seen by its last test. */
export interface SeenAtLeast {
  /** Commands run (at least). */
  readonly commands: number;
  /** Root keys registered (at least). */
  readonly rootKeys: number;
  /** Token-like text secrets registered (exactly). */
  readonly textSecrets: number;
}

/**
 * The last test of a CLI test file: no secret appears in any output of any command it ran, and
 * the search itself finds a leak in each form it looks for.
 */
export function assertNoSecretInTranscript(seen: SeenAtLeast): void {
  assert.ok(transcript.length >= seen.commands, `only ${transcript.length} commands ran`);
  assert.ok(secrets.filter((s) => s.name === "root key").length >= seen.rootKeys);
  assert.ok(textSecrets.length === seen.textSecrets);
  // The search itself finds a leak, in each form it looks for.
  const root = secrets.find((s) => s.name === "root key")!.bytes;
  assert.ok(leakIn(`key=${hex(root).slice(8, 48).toUpperCase()}`) !== null, "hex control");
  assert.ok(leakIn(`key=${base64(root).slice(4, 24)}`) !== null, "base64 control");
  if (textSecrets.length > 0) {
    assert.ok(leakIn(`t=${textSecrets[0]!.text.slice(100, 117)}`) !== null, "token control");
  }
  for (const r of transcript) {
    assertNoSecretIn(r.stdout, `stdout of ${show(r)}`);
    assertNoSecretIn(r.stderr, `stderr of ${show(r)}`);
    assert.not.ok((r.stdout + r.stderr).includes("\u001b["), "NO_COLOR: no escape sequences");
  }
}
