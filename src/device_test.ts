/** Device: the vault before and after the OTP holds a root key, read once per boot. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { codeOf } from "../test/support/assert.ts";
import { parseConfig } from "./config.ts";
import { Device } from "./device.ts";
import { Code } from "./errors.ts";
import { provision } from "./provision/provision.ts";

test("Device.vaultIfProgrammed(): null on a blank part, where vault() is OTP_BLANK; the same vault once provisioned", () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-device-" });
  try {
    const config = parseConfig(
      JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }),
      `${dir}/linkd.json`,
    );
    const d = Device.open(config);
    try {
      assert.is(d.vaultIfProgrammed(), null);
      assert.is(codeOf(() => d.vault()), Code.OTP_BLANK);
      assert.not.ok(d.isProvisioned());
      provision(d, { serial: "SN-D1", productId: "speaker", clientId: "cid" }, () => 1);
      const v = d.vaultIfProgrammed();
      assert.ok(v !== null);
      assert.is(d.vault(), v);
      assert.is(v!.identity()!.identity.serial, "SN-D1");
      assert.ok(d.isProvisioned());
    } finally {
      d.close();
    }
    // A reboot: a new Device over the same files finds the root key with one read.
    const again = Device.open(config);
    try {
      assert.is(again.vaultIfProgrammed()!.identity()!.identity.serial, "SN-D1");
    } finally {
      again.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test.run();
