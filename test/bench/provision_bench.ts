/** Provisioned devices per second: keys, sealing, signing and a written flash image and OTP. */
import nacl from "tweetnacl";
import { parseConfig } from "../../src/config.ts";
import { Device } from "../../src/device.ts";
import { provision } from "../../src/provision/provision.ts";
import type { Row } from "./main.ts";
import { seedSigner } from "../../src/provision/line_signer.ts";

export function provisionFigures(): Row[] {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-bench-" });
  const lineSigner = seedSigner(nacl.randomBytes(32));
  const devices = 60;
  try {
    const t0 = performance.now();
    for (let i = 0; i < devices; i++) {
      const config = parseConfig(
        JSON.stringify({
          flash: { path: `${dir}/flash-${i}.img` },
          keys: { otpPath: `${dir}/otp-${i}` },
        }),
        `${dir}/linkd.json`,
      );
      const d = Device.open(config);
      try {
        provision(d, {
          serial: `SN-${String(i).padStart(6, "0")}`,
          productId: "speaker",
          clientId: "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef",
          lineSigner,
        }, Date.now);
      } finally {
        d.close();
      }
    }
    const perSecond = devices / ((performance.now() - t0) / 1000);
    return [{
      area: "provision",
      metric: "devices provisioned per second (signed, flash + OTP files written)",
      value: perSecond.toFixed(1),
      goal: "",
    }];
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
