/** Flash figures: bytes programmed per token update, erases, projected life, mount time. */
import nacl from "tweetnacl";
import { NorEmulator } from "../../src/flash/nor_emulator.ts";
import { signIdentity } from "../../src/provision/line_signature.ts";
import { seedSigner } from "../../src/provision/line_signer.ts";
import { RecordStore } from "../../src/store/record_store.ts";
import { RecordType } from "../../src/records/types.ts";
import { Vault } from "../../src/store/vault.ts";
import { prng } from "../support/random.ts";
import { medianMicros } from "./timing.ts";
import type { Row } from "./main.ts";

const UPDATES = 3000;
const HOURS_PER_YEAR = 8766;
const ENDURANCE = 100_000;

export function storeFigures(): Row[] {
  const flash = NorEmulator.memory();
  const store = RecordStore.mount(flash);
  const vault = new Vault(store, nacl.randomBytes(32), (n) => nacl.randomBytes(n));
  vault.writeIdentity(signIdentity({
    serial: "SN-BENCH-000001",
    product_id: "speaker",
    client_id: "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef",
    device_public_key: nacl.randomBytes(32),
    provisioned_at: Date.now(),
  }, seedSigner(nacl.randomBytes(32))));
  vault.put(RecordType.DEVICE_KEY, nacl.randomBytes(60));
  vault.put(RecordType.SCOPES, nacl.randomBytes(200));
  const rand = prng(42);
  const before = flash.stats;
  const erasesBefore = flash.eraseCounts();
  let sealedBytes = 0;
  for (let i = 0; i < UPDATES; i++) {
    const plain = nacl.randomBytes(2048 + Math.floor(rand() * 2000)); // LWA tokens: 2–4 KiB sealed
    vault.put(RecordType.TOKENS, plain);
    sealedBytes += store.get(RecordType.TOKENS)!.data.length;
  }
  const after = flash.stats;
  const programmed = after.bytesProgrammed - before.bytesProgrammed;
  const erases = after.erases - before.erases;
  const worst = Math.max(...flash.eraseCounts().map((c, i) => c - erasesBefore[i]!));
  const perUpdateWorst = worst / UPDATES;
  const years = ENDURANCE / (perUpdateWorst * HOURS_PER_YEAR);
  const amplification = programmed / sealedBytes;
  const image = flash.image();
  const mountUs = medianMicros(() => {
    RecordStore.mount(NorEmulator.fromImage(image, flash.geometry));
  }, 200);
  return [
    {
      area: "store",
      metric: `bytes programmed per update / sealed size (${UPDATES} updates, 2-4 KiB)`,
      value: amplification.toFixed(3),
      goal: "<= 1.5",
      met: amplification <= 1.5,
    },
    {
      area: "store",
      metric: "erases per 1000 updates (whole partition)",
      value: ((erases / UPDATES) * 1000).toFixed(1),
      goal: "",
    },
    {
      area: "store",
      metric: "most-worn sector: erases per 1000 updates",
      value: (perUpdateWorst * 1000).toFixed(1),
      goal: "",
    },
    {
      area: "store",
      metric: "years to 100k cycles at 1 refresh/hour (64 KiB)",
      value: years.toFixed(0),
      goal: ">= 100",
      met: years >= 100,
    },
    {
      area: "store",
      metric: "mount of a used 64 KiB partition (us, median)",
      value: mountUs.toFixed(0),
      goal: "",
    },
  ];
}
