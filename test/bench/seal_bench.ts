/** Seal and open of a 2 KiB record. */
import nacl from "tweetnacl";
import { Sealer } from "../../src/seal/sealer.ts";
import { medianMicros } from "./timing.ts";
import type { Row } from "./main.ts";

export function sealFigures(): Row[] {
  const sealer = new Sealer(nacl.randomBytes(32), (n) => nacl.randomBytes(n));
  const plain = nacl.randomBytes(2048);
  const header = { type: 3, version: 1, seq: 1234, serial: "SN-BENCH-000001" };
  const sealed = sealer.seal(header, plain);
  const sealUs = medianMicros(() => void sealer.seal(header, plain), 2000);
  const openUs = medianMicros(
    () => void sealer.open(sealed, { type: 3, seq: 1234, serial: "SN-BENCH-000001" }),
    2000,
  );
  return [
    {
      area: "seal",
      metric: "seal a 2 KiB record (us, median)",
      value: sealUs.toFixed(0),
      goal: "",
    },
    {
      area: "seal",
      metric: "open a 2 KiB record (us, median)",
      value: openUs.toFixed(0),
      goal: "",
    },
  ];
}
