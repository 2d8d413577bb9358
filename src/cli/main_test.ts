import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, LinkdError } from "../errors.ts";
import { systemEffects } from "../device.ts";
import { type Io, main, withLineKey } from "./main.ts";
import type { LineSigner } from "../provision/line_signer.ts";
import { helpText, USAGE_TEXT } from "./args.ts";
import { VERSION } from "../version.ts";

/** A signer that records whether it was closed. */
function fakeSigner() {
  const state = { closed: false };
  const signer: LineSigner = {
    publicKey: new Uint8Array(32),
    sign: () => new Uint8Array(64),
    close: () => {
      state.closed = true;
    },
  };
  return { signer, state };
}

test("withLineKey() closes the signer when provisioning throws (73), not before", async () => {
  const { signer, state } = fakeSigner();
  const err = await withLineKey("/line.key", async (line) => {
    await new Promise((r) => AbortSignal.timeout(5).addEventListener("abort", r));
    assert.is(line, signer);
    assert.not.ok(state.closed, "open while provisioning");
    throw new LinkdError(Code.ALREADY_PROVISIONED, "Cannot provision: already provisioned");
  }, () => signer).catch((e) => e);
  assert.ok(err instanceof LinkdError && err.exitCode === 73);
  assert.ok(state.closed, "closed after the throw");
});

test("withLineKey() closes the signer on success; a key it cannot open never reaches fn", async () => {
  const { signer, state } = fakeSigner();
  assert.is(await withLineKey("/k.hex", () => 0, () => signer), 0);
  assert.ok(state.closed);
  const refused = await withLineKey("/k", () => assert.unreachable("not called"), () => {
    throw new LinkdError(Code.BAD_LINE_KEY, "Cannot use line key /k: expected 32 bytes");
  }).catch((e) => e);
  assert.ok(refused instanceof LinkdError && refused.code === Code.BAD_LINE_KEY);
  assert.is(await withLineKey(undefined, (line) => line === undefined), true);
});

test("withLineKey() with a real key file: the seed signs, and is wiped when it ends", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/line.key`, new Uint8Array(32).fill(7), { mode: 0o600 });
    let kept: LineSigner | undefined;
    await withLineKey(`${dir}/line.key`, (line) => {
      kept = line;
      assert.is(line!.sign(new Uint8Array([1])).length, 64);
    });
    assert.throws(() => kept!.sign(new Uint8Array([1])), /closed/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
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
