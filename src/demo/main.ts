/**
 * `deno task demo`: linkd on a demo device under target/demo, with nothing but this checkout.
 *
 * It writes a configuration whose flash partition and OTP key store are emulated files, a
 * factory line key, then runs the commands the factory line and a technician would: provision,
 * status, a second provision that the device refuses. Run it again and the device is read back
 * from its sealed flash. `--fresh` starts over with a blank device.
 */
import nacl from "tweetnacl";
import { toHex } from "../bytes.ts";
import { main } from "../cli/main.ts";

const root = new URL("../../", import.meta.url).pathname;
const dir = `${root}target/demo`;
const config = `${dir}/linkd.json`;

if (Deno.args.includes("--fresh")) Deno.removeSync(dir, { recursive: true });
Deno.mkdirSync(dir, { recursive: true });
try {
  Deno.statSync(config);
} catch {
  Deno.writeTextFileSync(
    config,
    JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }, null, 2) + "\n",
  );
  Deno.writeTextFileSync(`${dir}/line.key`, toHex(nacl.randomBytes(32)) + "\n", { mode: 0o600 });
}

function linkd(...args: string[]): number {
  console.log(`\n$ linkd ${args.join(" ")}`);
  const code = main(args);
  console.log(`(exit ${code})`);
  return code;
}

console.log(
  `Demo device in ${
    dir.replace(root, "")
  }: flash.img (emulated 64 KiB NOR), otp.bin (emulated OTP)`,
);
const serial = `DEMO-${toHex(nacl.randomBytes(3)).toUpperCase()}`;
const first = linkd(
  "provision",
  "--config",
  config,
  "--serial",
  serial,
  "--product-id",
  "demo_speaker",
  "--client-id",
  "amzn1.application-oa2-client.demo0123456789abcdef",
  "--line-key",
  `${dir}/line.key`,
  "--record-out",
  `${dir}/identity.cbor`,
);
if (first === 73) {
  console.log(
    "The device was provisioned by an earlier run: its identity is read back from flash.",
  );
}
linkd("status", "--config", config);
linkd("status", "--config", config, "--json");
console.log("\nThe factory line cannot provision the same device twice:");
linkd(
  "provision",
  "--config",
  config,
  "--serial",
  "OTHER-1",
  "--product-id",
  "x",
  "--client-id",
  "y",
);
console.log(`\nRun it again to boot from the sealed flash, or with --fresh to start over.`);
