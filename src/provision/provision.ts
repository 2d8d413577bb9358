/**
 * The factory line's step: writes a device's identity and keys once (CONTRACT.md section 3).
 *
 * Order, so that power loss at any point leaves a device that can be provisioned again and
 * never a half-provisioned one that claims to be whole:
 *   1. check every input; refuse an already provisioned device, and one whose store holds a
 *      damaged record (it needs repair), before writing anything;
 *   2. burn a fresh root key into the OTP store (kept if an earlier run burned one and was cut
 *      off before step 5: OTP cannot be written twice, and the key was never used outside);
 *   3. start from an empty store: delete every record an earlier run or an earlier life left
 *      (tokens, scopes, a device key) and scrub, so none can come back under the new identity;
 *   4. seal the device's Ed25519 key into flash;
 *   5. write the identity record, signed by the line: from here on the device is provisioned.
 */
import nacl from "tweetnacl";
import { wipe } from "../bytes.ts";
import { encodeCbor } from "../cbor.ts";
import type { Device } from "../device.ts";
import { Code, LinkdError } from "../errors.ts";
import { ROOT_KEY_BYTES } from "../seal/otp.ts";
import { RecordType } from "../store/vault.ts";
import {
  checkIdentityInputs,
  type Identity,
  type SignedIdentity,
  signIdentity,
} from "./identity.ts";

export interface ProvisionInput {
  readonly serial: string;
  readonly productId: string;
  readonly clientId: string;
  /** The line's Ed25519 seed (32 bytes); the record is signed when given. */
  readonly lineSeed?: Uint8Array;
}

export interface ProvisionResult {
  readonly signed: SignedIdentity;
  /** True when the OTP already held a root key from an interrupted earlier run. */
  readonly resumed: boolean;
}

/**
 * Provisions `device`. `beforeCommit` runs with the signed identity just before it is written
 * (the CLI writes `--record-out` there): if it throws, the device stays unprovisioned.
 */
export function provision(
  device: Device,
  input: ProvisionInput,
  now: () => number,
  beforeCommit: (signed: SignedIdentity) => void = () => {},
): ProvisionResult {
  checkIdentityInputs(input.serial, input.productId, input.clientId);
  // Every refusal comes before the OTP is programmed or the flash is written.
  const lost = device.store.health.lostKeys;
  if (lost.includes(RecordType.IDENTITY)) {
    throw new LinkdError(
      Code.ALREADY_PROVISIONED,
      "Cannot provision: this device was provisioned and its identity record is damaged; it needs repair, not a second identity; nothing was changed",
    );
  }
  if (lost.length > 0) {
    throw new LinkdError(
      Code.ALREADY_PROVISIONED,
      `Cannot provision: this device's store holds damaged records (${
        lost.map(recordName).join(", ")
      }); it needs repair, not a second identity; nothing was changed`,
    );
  }
  const otpState = device.otp.state();
  if (otpState === "programmed" && device.vault().identity() !== null) {
    const id = device.vault().identity()!.identity;
    throw new LinkdError(
      Code.ALREADY_PROVISIONED,
      `Cannot provision: this device is already provisioned as serial ${id.serial}; nothing was changed`,
    );
  }
  const resumed = otpState === "programmed";
  if (!resumed) {
    const root = device.effects.random(ROOT_KEY_BYTES);
    try {
      device.otp.program(root);
    } finally {
      wipe(root);
    }
  }
  // Nothing of an earlier run or an earlier life may come back under the new identity.
  if (resumed || device.store.keys().length > 0) clearStore(device);
  const vault = device.vault();
  const seed = device.effects.random(32);
  const pair = nacl.sign.keyPair.fromSeed(seed);
  try {
    vault.put(RecordType.DEVICE_KEY, encodeCbor({ ed25519_seed: seed }), input.serial);
  } finally {
    wipe(seed);
    wipe(pair.secretKey);
  }
  const identity: Identity = {
    serial: input.serial,
    product_id: input.productId,
    client_id: input.clientId,
    device_public_key: pair.publicKey,
    provisioned_at: now(),
  };
  const signed = signIdentity(identity, input.lineSeed);
  beforeCommit(signed);
  vault.writeIdentity(signed);
  device.flash.sync();
  return { signed, resumed };
}

/** Deletes every record in the store, then scrubs it so that none of their bytes remain. */
function clearStore(device: Device): void {
  const types = new Set<number>([
    RecordType.TOKENS,
    RecordType.SCOPES,
    RecordType.DEVICE_KEY,
    ...device.store.keys(),
  ]);
  for (const t of types) device.store.delete(t);
  device.store.scrub();
}

/** A record's name in messages: its type's name, or its number when linkd does not know it. */
function recordName(key: number): string {
  const name = Object.entries(RecordType).find(([, v]) => v === key)?.[0];
  return name === undefined ? `record ${key}` : name.toLowerCase().replace("_", " ");
}
