/**
 * Integration tests of the `linkd` executable, CONTRACT.md section 2 (the configuration file)
 * and the files it names: missing folders (exit 66), a bad config (exit 78 naming the key), a
 * flash image of the wrong size, and files read with a bound. Run as real subprocesses on
 * emulated devices (a temp folder per device with a config file naming a flash image and an
 * OTP file next to it).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  assertFails,
  assertSameBytes,
  copyDevice,
  exists,
  linkd,
  makeDevice,
  oneJsonLine,
  provisionArgs,
  provisionCmd,
  useWork,
} from "./support/cli.ts";
import { P, runBadCases } from "./support/cli_bad_cases.ts";
import { assertNoSecretInTranscript } from "./support/cli_secrets.ts";
import { provisionSigned, signed } from "./support/cli_signed.ts";

const work = useWork("linkd-cli-config-test-");
test.before(async () => {
  await provisionSigned();
});

// ---- section 1: bad input ------------------------------------------------------------------

test("missing folders: exit 66, nothing created", async () => {
  const cfg = (flash: string, otp: string) =>
    JSON.stringify({ flash: { path: flash }, keys: { otpPath: otp } });
  await runBadCases([
    {
      name: "OTP folder missing (provision)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("flash.img", "nokeys/otp.bin")),
      args: (d) => P(d, "SN1"),
      mentions: () => "nokeys",
    },
    {
      name: "OTP folder missing (status)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("flash.img", "nokeys/otp.bin")),
      args: (d) => ["status", "--config", d.config, "--json"],
      mentions: () => "nokeys",
    },
    {
      name: "flash folder missing (provision)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("noflash/flash.img", "otp.bin")),
      args: (d) => P(d, "SN1"),
      mentions: () => "noflash",
    },
    {
      name: "flash folder missing (status)",
      code: 66,
      setup: (d) => Deno.writeTextFileSync(d.config, cfg("noflash/flash.img", "otp.bin")),
      args: (d) => ["status", "--config", d.config],
      mentions: () => "noflash",
    },
    {
      name: "record-out folder missing",
      code: 66,
      args: (d) => P(d, "SN1", "--record-out", `${d.dir}/nowhere/r.cbor`),
      mentions: () => "nowhere",
    },
  ]);
});

test("bad config: exit 78 naming the problem, nothing created", async () => {
  await runBadCases([
    {
      name: "unknown key in a section",
      code: 78,
      setup: (d) =>
        Deno.writeTextFileSync(
          d.config,
          JSON.stringify({
            flash: { path: "flash.img", sise: 4096 },
            keys: { otpPath: "otp.bin" },
          }),
        ),
      args: (d) => P(d, "SN1"),
      mentions: () => "flash.sise",
    },
    {
      name: "unknown top-level key",
      code: 78,
      setup: (d) =>
        Deno.writeTextFileSync(
          d.config,
          JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" }, colour: 1 }),
        ),
      args: (d) => ["status", "--config", d.config, "--json"],
      mentions: () => "colour",
    },
    {
      name: "wrong type",
      code: 78,
      setup: (d) =>
        Deno.writeTextFileSync(
          d.config,
          JSON.stringify({
            flash: { path: "flash.img", size: "64k" },
            keys: { otpPath: "otp.bin" },
          }),
        ),
      args: (d) => ["status", "--config", d.config],
      mentions: () => "flash.size",
    },
    {
      name: "not JSON",
      code: 78,
      setup: (d) => Deno.writeTextFileSync(d.config, "{flash: {path: flash.img}"),
      args: (d) => P(d, "SN1"),
      mentions: (d) => d.config,
    },
    {
      name: "--config to a missing file",
      code: 78,
      args: (d) => ["status", "--config", `${d.dir}/absent.json`, "--json"],
      mentions: (d) => `${d.dir}/absent.json`,
    },
    {
      name: "--config to a missing file (provision)",
      code: 78,
      args: (d) => [...P(d, "SN1").slice(0, 2), `${d.dir}/absent.json`, ...P(d, "SN1").slice(3)],
      mentions: (d) => `${d.dir}/absent.json`,
    },
  ]);
});

test("flash image of the wrong size: exit 78, file untouched", async () => {
  const cases: [string, (b: Uint8Array) => Uint8Array][] = [
    ["longer", (b) => new Uint8Array([...b, 0xff, 0xff, 0xff, 0xff])],
    ["shorter", (b) => b.slice(0, 4096)],
  ];
  await Promise.all(cases.map(async ([name, resize]) => {
    const d = copyDevice(signed(), work);
    const bytes = resize(Deno.readFileSync(d.flash));
    Deno.writeFileSync(d.flash, bytes);
    const otp = Deno.readFileSync(d.otp);
    for (const args of [["status", "--json"], ["logout"], ["provision", "--serial", "X"]]) {
      const full = args[0] === "provision"
        ? [...args, "--product-id", "P", "--client-id", "C", "--config", d.config]
        : [...args, "--config", d.config];
      assertFails(await linkd(full, work), 78, "bytes");
      assertSameBytes(Deno.readFileSync(d.flash), bytes, `${name} flash left as it was`);
      assertSameBytes(Deno.readFileSync(d.otp), otp, `${name} OTP left as it was`);
    }
  }));
});

test("files named on the command line or in the config are read with a bound", async () => {
  const within = 60_000; // a read to the end of /dev/zero would never finish
  const d = makeDevice(work);
  const config = await linkd(["status", "--config", "/dev/zero"], work, {}, within);
  assertFails(config, 78, "it is a character device, not a regular file"); // never opened

  const key = await linkd(
    provisionArgs(d, { serial: "SN1", lineKey: "/dev/zero" }),
    work,
    {},
    within,
  );
  assertFails(key, 65, "/dev/zero");
  const big = `${d.dir}/big.key`;
  Deno.writeFileSync(big, new Uint8Array(4097).fill(0x61), { mode: 0o600 });
  const bigLine = assertFails(await provisionCmd(d, { serial: "SN1", lineKey: big }), 65, big);
  assert.match(bigLine, /more than 4096 bytes/);
  assert.not.ok(exists(d.otp) || exists(d.flash), "refused before the device is touched");

  const z = makeDevice(
    work,
    JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "/dev/zero" } }),
  );
  const s = oneJsonLine(await linkd(["status", "--json", "--config", z.config], work, {}, within));
  assert.is(s.provisioned, false);
  const store = s.store as { ok: boolean; detail?: string };
  assert.is(store.ok, false);
  assert.match(String(store.detail), /OTP.*a character device, not a regular file/);
  const p = await linkd(provisionArgs(z, { serial: "SN1" }), work, {}, within);
  assertFails(p, 65, "OTP");
});

// ---- every output of every command ---------------------------------------------------------

test("no secret appears in any output of any command", () => {
  assertNoSecretInTranscript({ commands: 15, rootKeys: 1, textSecrets: 0 });
});

test.run();
