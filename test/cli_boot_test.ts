/**
 * Integration tests of the `linkd` executable, CONTRACT.md section 1 (the boot process):
 * `--version` and `--help`, bad command lines (exit 64), where the config comes from, and the
 * exit codes and their one stderr line. Run as real subprocesses on emulated devices (a temp
 * folder per device with a config file naming a flash image and an OTP file next to it).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, LinkdError } from "../src/errors.ts";
import { VERSION } from "../src/version.ts";
import {
  assertFails,
  assertOk,
  copyDevice,
  exists,
  FRESH_STATUS,
  linkd,
  makeDevice,
  oneJsonLine,
  provisionCmd,
  rootKeyOf,
  useWork,
} from "./support/cli.ts";
import { P, runBadCases } from "./support/cli_bad_cases.ts";
import { assertNoSecretInTranscript, secrets } from "./support/cli_secrets.ts";
import { provisionSigned, signed, SIGNED_SERIAL } from "./support/cli_signed.ts";

const work = useWork("linkd-cli-boot-test-");
test.before(async () => {
  await provisionSigned();
});

// ---- section 1: --version, --help ------------------------------------------------------------

test("--version prints `linkd <semver>`, --help names every subcommand", async () => {
  const [v, h] = await Promise.all([linkd(["--version"], work), linkd(["--help"], work)]);
  const out = assertOk(v);
  assert.match(
    out,
    /^linkd (0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\n$/,
  );
  assert.is(out, `linkd ${VERSION}\n`);

  const help = assertOk(h);
  for (const sub of ["run", "status", "provision", "logout", "factory-reset"]) {
    assert.match(help, new RegExp(`linkd ${sub} --config`), `--help shows linkd ${sub}`);
  }
  assert.match(help, /linkd --version/);
  for (const flag of ["--serial", "--product-id", "--client-id", "--line-key", "--record-out"]) {
    assert.ok(help.includes(flag), `--help mentions ${flag}`);
  }
});

test("help, version, -V, SUBCOMMAND --help, -c; a bare linkd is the usage, one line on stderr, exit 64", async () => {
  const d = copyDevice(signed(), work);
  const [bare, version, v, help, statusHelp, viaC] = await Promise.all([
    linkd([], work),
    linkd(["version"], work),
    linkd(["-V"], work),
    linkd(["help"], work),
    linkd(["status", "--help"], work),
    linkd(["status", "--json", "-c", d.config], work),
  ]);
  assert.is(bare.code, 64);
  assert.match(bare.stdout, /^linkd: the account-linking runtime[^]*\nUsage:\n {2}linkd run /);
  assert.is(
    bare.stderr,
    "linkd: no subcommand given; see 'linkd --help'\n",
    "one line (CONTRACT 1)",
  );
  assert.is(assertOk(version), `linkd ${VERSION}\n`);
  assert.is(assertOk(v), `linkd ${VERSION}\n`);
  assert.match(assertOk(help), /^linkd: the account-linking runtime[^]*linkd help \[SUBCOMMAND\]/);
  const sh = assertOk(statusHelp);
  assert.match(sh, /^Usage: linkd status \[-c FILE\] \[--json\]\n/);
  assert.match(sh, /\n {2}-c, --config FILE .*LINKD_CONFIG, then \/etc\/linkd\/linkd\.json\)\n/);
  assert.is(oneJsonLine(viaC).serial, SIGNED_SERIAL);
});

// ---- section 1: bad input ------------------------------------------------------------------

test("bad command lines: exit 64, one line, nothing touched", async () => {
  await runBadCases([
    // An empty --serial, --product-id or --client-id is bad data (65, below); an empty value
    // of any other flag is a bad command line.
    {
      name: "--line-key ''",
      code: 64,
      args: (d) => P(d, "SN1", "--line-key", ""),
      mentions: () => "--line-key",
    },
    {
      name: "--config=",
      code: 64,
      args: () => ["status", "--config=", "--json"],
      mentions: () => "--config",
    },
    {
      name: "unknown flag (status)",
      code: 64,
      args: (d) => ["status", "--config", d.config, "--jsno"],
      mentions: () => "--jsno",
    },
    {
      name: "unknown flag (provision)",
      code: 64,
      args: (d) => P(d, "SN1", "--line-kye", `${d.dir}/k`),
      mentions: () => "--line-kye",
    },
    {
      name: "unknown subcommand",
      code: 64,
      args: (d) => ["provison", "--config", d.config],
      mentions: () => "linkd: 'provison' is not a linkd command; see 'linkd --help'",
    },
    {
      name: "unknown short option",
      code: 64,
      args: (d) => ["status", "-x", "-c", d.config],
      mentions: () => "Unknown option '-x' for linkd status; see 'linkd status --help'",
    },
    {
      name: "missing --serial",
      code: 64,
      args: (d) => ["provision", "--config", d.config, "--product-id", "P", "--client-id", "C"],
      mentions: () => "--serial",
    },
    {
      name: "flag given twice",
      code: 64,
      args: (d) => P(d, "SN1", "--serial", "SN2"),
      mentions: () => "--serial",
    },
    {
      name: "stray argument",
      code: 64,
      args: (d) => ["status", "--config", d.config, "extra"],
      mentions: () => "extra",
    },
    { name: "--version with more", code: 64, args: () => ["--version", "--json"] },
  ]);
});

// ---- section 1: where the config comes from -------------------------------------------------

test("--config falls back to LINKD_CONFIG; --config wins over it", async () => {
  const d = copyDevice(signed(), work);
  const fresh = makeDevice(work);

  const viaEnv = oneJsonLine(await linkd(["status", "--json"], work, { LINKD_CONFIG: d.config }));
  assert.is(viaEnv.provisioned, true);
  assert.is(viaEnv.serial, SIGNED_SERIAL);

  const both = oneJsonLine(
    await linkd(["status", "--json", "--config", fresh.config], work, { LINKD_CONFIG: d.config }),
  );
  assert.equal(both, FRESH_STATUS, "--config is used, not LINKD_CONFIG");

  const missing = `${work}/no-such-config.json`;
  assertFails(await linkd(["status"], work, { LINKD_CONFIG: missing }), 78, missing);

  // provision through LINKD_CONFIG writes the device that config names.
  const p = makeDevice(work);
  const r = await linkd(
    ["provision", "--serial", "ENV-1", "--product-id", "P", "--client-id", "C"],
    work,
    { LINKD_CONFIG: p.config },
  );
  assert.is(oneJsonLine(r).serial, "ENV-1");
  assert.ok(exists(p.otp) && exists(p.flash), "the env config's device was provisioned");
  secrets.push({ name: "root key", bytes: rootKeyOf(p) });

  // A relative --config is relative to the working folder; paths inside it to its own folder.
  const rel = p.dir.slice(work.length + 1) + "/linkd.json";
  const s = oneJsonLine(await linkd(["status", "--json", "--config", rel], work));
  assert.is(s.serial, "ENV-1");

  // Neither: /etc/linkd/linkd.json.
  if (!exists("/etc/linkd/linkd.json")) {
    assertFails(await linkd(["status"], work), 78, "/etc/linkd/linkd.json");
  }
});

// ---- exit codes and the one stderr line ---------------------------------------------------------

test("a flash that exists but cannot be read is exit 65, not 66", async () => {
  assert.is(new LinkdError(Code.FLASH_IO, "x").exitCode, 65);
  assert.is(new LinkdError(Code.FLASH_MISSING, "x").exitCode, 66);
  const d = makeDevice(work);
  Deno.symlinkSync("flash.img", d.flash); // a loop: stat and open fail with ELOOP
  for (const args of [["status", "--json"], ["logout"], ["factory-reset"]]) {
    assertFails(await linkd([...args, "--config", d.config], work), 65, d.flash);
  }
  assertFails(await provisionCmd(d, { serial: "SN1" }), 65, d.flash);
  assert.not.ok(exists(d.otp), "the OTP is not programmed");
});

test("a line break in a path from argv does not split the stderr line", async () => {
  const d = makeDevice(work);
  const config = `${work}/x\ny.json`;
  const r = await linkd(["status", "--config", config], work);
  const line = assertFails(r, 78, `${work}/x y.json`);
  // deno-lint-ignore no-control-regex
  assert.not.match(line, /[\u0000-\u001f]/);
  const key = `${d.dir}/line\r\nkey`;
  assertFails(await provisionCmd(d, { serial: "SN1", lineKey: key }), 66, `${d.dir}/line  key`);
  const tab = `${d.dir}/a\tb\u001b[31m.json`;
  assertFails(await linkd(["status", "--config", tab], work), 78, `${d.dir}/a b [31m.json`);
});

// ---- every output of every command ---------------------------------------------------------

test("no secret appears in any output of any command", () => {
  assertNoSecretInTranscript({ commands: 15, rootKeys: 2, textSecrets: 0 });
});

test.run();
