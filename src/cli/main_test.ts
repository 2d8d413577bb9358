import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, LinkdError } from "../errors.ts";
import { systemEffects } from "../device.ts";
import { type Io, main, withLineKey } from "./main.ts";
import { helpText, USAGE_TEXT } from "./args.ts";
import { VERSION } from "../version.ts";

const zero = (b: Uint8Array) => b.every((x) => x === 0);

test("withLineKey() wipes the seed and the file's bytes when provisioning throws (73)", async () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  let seen: Uint8Array | undefined;
  const err = await withLineKey("/line.key", async (seed) => {
    seen = seed;
    await new Promise((r) => setTimeout(r, 5)); // provisioning takes a moment: still unwiped
    assert.ok(seed !== undefined && !zero(seed), "the seed is there while provisioning");
    throw new LinkdError(Code.ALREADY_PROVISIONED, "Cannot provision: already provisioned");
  }, () => raw).catch((e) => e);
  assert.ok(err instanceof LinkdError && err.exitCode === 73);
  assert.ok(seen !== undefined && seen.length === 32 && zero(seen), "seed wiped");
  assert.ok(zero(raw), "file bytes wiped");
});

test("withLineKey() wipes a hex key file and its seed on success, and on a bad key", async () => {
  const hex = new TextEncoder().encode("ab".repeat(32) + "\n");
  let seen: Uint8Array | undefined;
  assert.is(await withLineKey("/k.hex", (seed) => (seen = seed, 0), () => hex), 0);
  assert.ok(seen !== undefined && zero(seen), "seed wiped");
  assert.ok(zero(hex), "hex text wiped");

  const bad = crypto.getRandomValues(new Uint8Array(31));
  const refused = await withLineKey("/k", () => assert.unreachable("not called"), () => bad).catch((
    e,
  ) => e);
  assert.ok(refused instanceof LinkdError && refused.code === Code.BAD_LINE_KEY);
  assert.ok(zero(bad), "a refused key file is wiped too");

  assert.is(await withLineKey(undefined, (seed) => seed === undefined), true);
});

test("main() prints one line on stderr even when a path from argv holds line breaks", async () => {
  const err: string[] = [];
  const io: Io = {
    out: () => assert.unreachable("no stdout"),
    err: (t) => err.push(t),
    env: () => undefined,
    now: () => Date.now(),
    effects: systemEffects,
  };
  const dir = Deno.makeTempDirSync({ prefix: "linkd-main-" });
  try {
    const code = await main(["status", "--config", `${dir}/x\ny\r\u2028z.json`], io);
    assert.is(code, 78);
    assert.is(err.length, 1);
    assert.ok(err[0]!.includes(`${dir}/x y  z.json`), err[0]);
    // deno-lint-ignore no-control-regex
    assert.not.match(err[0]!, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Runs main() with `argv` on an Io that records stdout and stderr. */
async function capture(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: () => undefined,
    now: () => Date.now(),
    effects: systemEffects,
  };
  return { code: await main(argv, io), out, err };
}

test("main() prints the usage and exits 64 for a bare linkd, with one line on stderr", async () => {
  const r = await capture([]);
  assert.is(r.code, 64);
  assert.equal(r.out, [USAGE_TEXT.trimEnd()]);
  assert.equal(r.err, ["linkd: no subcommand given; see 'linkd --help'"]);
});

test("main() prints help on stdout, exit 0: linkd's own, or a subcommand's", async () => {
  for (const argv of [["--help"], ["-h"], ["help"]]) {
    assert.equal(await capture(argv), { code: 0, out: [USAGE_TEXT.trimEnd()], err: [] });
  }
  for (const argv of [["status", "--help"], ["status", "-h"], ["help", "status"]]) {
    assert.equal(await capture(argv), { code: 0, out: [helpText("status")], err: [] });
  }
});

test("main() prints the version for --version, -V and version", async () => {
  for (const argv of [["--version"], ["-V"], ["version"]]) {
    assert.equal(await capture(argv), { code: 0, out: [`linkd ${VERSION}`], err: [] });
  }
});

test.run();
