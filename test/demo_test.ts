/**
 * The README's first command: the demo pairs unattended with --approve, the audio-pipeline
 * subscriber gets the token, and a second run boots from the sealed flash without pairing; a
 * damaged flash stops the demo with store_damaged, never a second provisioning.
 * With --refusal-style html the music scope is refused with Amazon's HTML page instead.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";

const root = new URL("..", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "linkd-demo-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

async function demo(...args: string[]): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}dev/demo/main.ts`, ...args],
    cwd: root,
    env: { LINKD_DEMO_DIR: dir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const r = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

test("demo --approve: provisions, pairs, the subscriber gets a token; again: boots from flash", async () => {
  const first = await demo("--fresh", "--approve");
  assert.is(first.code, 0, first.out);
  assert.match(first.out, /linkd provision/);
  assert.ok(first.out.includes(`device files in ${dir},`), "names the folder it really uses");
  assert.match(first.out, /\[audio\] state: pairing/);
  assert.match(first.out, /would say: "To link this device/);
  assert.match(first.out, /segment display/);
  assert.match(first.out, /\[demo\] approved [A-Z]{6}/);
  assert.match(first.out, /\[audio\] token received: Atza\|/);
  assert.match(first.out, /unknown_scope/, "the refused music scope is reported");
  assert.match(first.out, /\[audio\] state: offline/);
  const again = await demo();
  assert.is(again.code, 0, again.out);
  assert.not.match(again.out, /linkd provision/);
  assert.not.match(again.out, /state: pairing/, "no pairing on the second boot");
  assert.match(again.out, /\[audio\] state: linked/);
  assert.match(again.out, /\[audio\] token received: Atza\|/);
  // The flash damaged (its only sector header): not a blank device, no second provisioning.
  const flash = Deno.readFileSync(`${dir}/flash.img`);
  flash[0]! ^= 0x10;
  Deno.writeFileSync(`${dir}/flash.img`, flash);
  const damaged = await demo("--approve");
  assert.is(damaged.code, 1, damaged.out);
  assert.not.match(damaged.out, /linkd provision/);
  assert.match(damaged.out, /\[audio\] state: error \(store_damaged\)/);
  assert.match(damaged.out, /flash is damaged .*--fresh/);
  assert.equal(Deno.readFileSync(`${dir}/flash.img`), flash, "the evidence is kept");
});

test("demo --refusal-style html: Amazon's HTML page refuses the music scope; linkd links with alexa:all and reports it", async () => {
  const r = await demo("--fresh", "--approve", "--refusal-style", "html");
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /refuses music::library:read with Amazon's HTML error page/);
  assert.match(r.out, /\[audio\] token received: Atza\|/);
  assert.match(r.out, /"granted":\["alexa:all"\]/);
  assert.match(
    r.out,
    /"denied":\[\{"scope":"music::library:read","reason":"unknown_scope"\}\]/,
    "the refused music scope is reported as unknown_scope",
  );
});

test("demo: a bad flag exits 64 with one line", async () => {
  for (const args of [["--refusal-style", "xml"], ["--frobnicate"], ["--approve=no"]]) {
    const r = await demo(...args);
    assert.is(r.code, 64, r.out);
    assert.is(r.out.trim().split("\n").length, 1, r.out);
  }
});

test.run();
