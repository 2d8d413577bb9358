/**
 * The factory line's step: writes a device's identity and keys once (CONTRACT.md section 3),
 * and the rework station's: gives a device whose identity record was damaged or lost the same
 * identity back (`repair`).
 *
 * One identity per device for life: the OTP holds the root key and, burnt in the same write, a
 * binding to the serial, product id and client id (seal/binding.ts); the device key derives from
 * the root key. So a device is provisioned once its OTP is written, whatever its flash says, and
 * nothing can give it another serial: provisioning again continues only with the bound identity,
 * and a repair writes the same one back (same serial, same device key, signed again by the line).
 *
 * Order of `provision`, so that power loss at any point leaves a device that can be provisioned
 * again with the same identity and never a half-provisioned one that claims to be whole:
 *   1. check every input; refuse a provisioned device (its OTP is written) whose store is
 *      damaged (it needs repair), whose identity is there, or that is bound to another
 *      identity, before writing anything: flash and OTP stay byte for byte as they were;
 *   2. burn a fresh root key and the identity binding into the OTP store in one write (kept if
 *      an earlier run burned them and was cut off before step 5);
 *   3. start from an empty store: erase whatever an earlier run or an earlier life left
 *      (tokens, scopes, a device key), so none can come back under the identity;
 *   4. seal the device's Ed25519 key (derived from the root key) into flash;
 *   5. write the identity record, signed by the line: from here on the flash is whole.
 */
import nacl from "tweetnacl";
import { wipe } from "../bytes.ts";
import { encodeCbor } from "../cbor.ts";
import type { Device } from "../device.ts";
import { Code, isLinkdError, LinkdError } from "../errors.ts";
import { identityBinding } from "../seal/binding.ts";
import { ROOT_KEY_BYTES } from "../seal/otp.ts";
import type { StoreHealth } from "../store/record_store.ts";
import { RecordType } from "../records/types.ts";
import type { Vault } from "../store/vault.ts";
import {
  checkIdentityInputs,
  type Identity,
  REPAIR_HINT,
  type SignedIdentity,
} from "../records/identity.ts";
import { signIdentity } from "./line_signature.ts";
import type { LineSigner } from "./line_signer.ts";

export interface ProvisionInput {
  readonly serial: string;
  readonly productId: string;
  readonly clientId: string;
  /** The line's signer (a key file or an HSM: line_signer.ts); the record is signed when given. */
  readonly lineSigner?: LineSigner;
}

export interface ProvisionResult {
  readonly signed: SignedIdentity;
  /** True when the OTP already held a root key from an interrupted earlier run. */
  readonly resumed: boolean;
}

export interface RepairResult {
  readonly signed: SignedIdentity;
  /** False when there was nothing to repair: nothing was written. */
  readonly repaired: boolean;
}

/**
 * Provisions `device`. `beforeCommit` runs with the signed identity just before it is written
 * (the CLI writes `--record-out` there): if it throws, the identity is not written (and the
 * device can be provisioned again with the same identity).
 */
export function provision(
  device: Device,
  input: ProvisionInput,
  now: () => number,
  beforeCommit: (signed: SignedIdentity) => void = () => {},
): ProvisionResult {
  // Every refusal comes before the OTP is programmed or the flash is written.
  const resumed = checkProvision(device, input) === "resume";
  if (!resumed) {
    // Never provisioned: nothing on the flash can be opened (no root key ever sealed it).
    const root = device.effects.random(ROOT_KEY_BYTES);
    const binding = identityBinding(root, input);
    try {
      device.otp.program(root, binding);
    } finally {
      wipe(root);
      wipe(binding);
    }
  }
  // Nothing of an earlier run or an earlier life may come back under the identity.
  if (resumed || !isBlank(device.store.health)) device.store.format();
  const signed = writeIdentity(device.vault(), input, now());
  beforeCommit(signed);
  device.vault().writeIdentity(signed);
  device.flash.sync();
  return { signed, resumed };
}

/**
 * Every refusal of `provision`, without writing anything (the CLI runs it on a read-only open
 * first, so that a refusal does not even create a missing flash file): "new" for a blank OTP,
 * "resume" for a device whose OTP is bound to `input` and whose healthy store has no identity.
 */
export function checkProvision(device: Device, input: ProvisionInput): "new" | "resume" {
  checkIdentityInputs(input.serial, input.productId, input.clientId);
  const otp = device.vaultAndBinding();
  if (otp === null) return "new";
  try {
    const vault = otp.vault;
    const damage = damageOf(device.store.health, vault);
    if (damage !== null) {
      throw new LinkdError(
        Code.ALREADY_PROVISIONED,
        `Cannot provision: this device is provisioned (its OTP holds a root key) and its store is damaged (${damage}); it needs repair, not a second identity: ${REPAIR_HINT}; nothing was changed`,
      );
    }
    const id = vault.identity();
    if (id !== null) {
      throw new LinkdError(
        Code.ALREADY_PROVISIONED,
        `Cannot provision: this device is already provisioned as serial ${id.identity.serial}; nothing was changed`,
      );
    }
    checkBinding(vault, otp.binding, input, "provision");
    return "resume";
  } finally {
    if (otp.binding) wipe(otp.binding);
  }
}

/**
 * Repairs `device` for the line's rework station: the identity `input` must be the one its OTP
 * is bound to (else ALREADY_PROVISIONED, nothing changed). A damaged or lost identity record is
 * written again with the same serial, product id, client id and device key (derived from the
 * OTP root key), a new `provisioned_at`, signed by the line; damaged records of the user are set
 * aside (the user pairs again), readable ones are kept; a partition with no valid sector is
 * formatted. Nothing is written when the device is whole. `beforeCommit` as for `provision`.
 */
export function repair(
  device: Device,
  input: ProvisionInput,
  now: () => number,
  beforeCommit: (signed: SignedIdentity) => void = () => {},
): RepairResult {
  const vault = checkRepair(device, input);
  const health = device.store.health;
  let current: SignedIdentity | null = null;
  try {
    current = vault.identity();
  } catch (e) {
    if (!isLinkdError(e)) throw e;
  }
  if (current !== null && !sameIdentity(current.identity, input)) current = null;
  const deviceKeyOk = (() => {
    try {
      return vault.get(RecordType.DEVICE_KEY, input.serial) !== null;
    } catch {
      return false;
    }
  })();
  if (current !== null && health.ok && deviceKeyOk) return { signed: current, repaired: false };
  if (health.noLog) device.store.format();
  // Damaged records of the user are set aside; the identity and device key are written again.
  for (const key of device.store.health.lostKeys) device.store.delete(key);
  const signed = current ?? writeIdentity(vault, input, now());
  if (current !== null && !deviceKeyOk) putDeviceKey(vault, input.serial);
  beforeCommit(signed);
  if (current === null) vault.writeIdentity(signed);
  // Whatever damage the old sectors held goes with them: the live records move to fresh ones.
  device.store.scrub();
  device.flash.sync();
  return { signed, repaired: true };
}

function sameIdentity(id: Identity, input: ProvisionInput): boolean {
  return id.serial === input.serial && id.product_id === input.productId &&
    id.client_id === input.clientId;
}

/**
 * Every refusal of `repair`, without writing anything (the CLI runs it on a read-only open
 * first): the OTP must hold a root key bound to `input`. Returns the vault.
 */
export function checkRepair(device: Device, input: ProvisionInput): Vault {
  checkIdentityInputs(input.serial, input.productId, input.clientId);
  const otp = device.vaultAndBinding();
  if (otp === null) {
    throw new LinkdError(
      Code.NOT_PROVISIONED,
      "Cannot repair: the OTP key store is blank, so this device was never provisioned; provision it with linkd provision",
    );
  }
  checkBinding(otp.vault, otp.binding, input, "repair");
  return otp.vault;
}

/** Refuses `input` unless the OTP's `binding` commits to it. A part without one cannot tell. */
function checkBinding(
  vault: Vault,
  binding: Uint8Array | null,
  input: ProvisionInput,
  action: "provision" | "repair",
): void {
  if (binding === null) {
    throw new LinkdError(
      Code.ALREADY_PROVISIONED,
      `Cannot ${action}: this device's OTP holds a root key written before identity bindings, and its flash holds no readable identity, so no identity can be proven for it; nothing was changed`,
    );
  }
  const ok = vault.bindingMatches(binding, input);
  wipe(binding);
  if (!ok) {
    throw new LinkdError(
      Code.ALREADY_PROVISIONED,
      `Cannot ${action}: this device is provisioned, and its OTP binds it to another serial, product id or client id; a device keeps one identity for life (check the line's record for it); nothing was changed`,
    );
  }
}

/**
 * The device's Ed25519 public key, derived from its OTP root key (the key a repair keeps); the
 * seed and the secret key are wiped.
 */
export function devicePublicKey(vault: Vault): Uint8Array {
  const seed = vault.deviceSeed();
  const pair = nacl.sign.keyPair.fromSeed(seed);
  wipe(seed);
  wipe(pair.secretKey);
  return pair.publicKey;
}

/** Seals the derived device key into flash and returns the identity to sign and write. */
function writeIdentity(vault: Vault, input: ProvisionInput, at: number): SignedIdentity {
  putDeviceKey(vault, input.serial);
  const identity: Identity = {
    serial: input.serial,
    product_id: input.productId,
    client_id: input.clientId,
    device_public_key: devicePublicKey(vault),
    provisioned_at: at,
  };
  return signIdentity(identity, input.lineSigner);
}

/** Seals the device's seed (derived from the root key) into the DEVICE_KEY record. */
function putDeviceKey(vault: Vault, serial: string): void {
  const seed = vault.deviceSeed();
  const plain = encodeCbor({ ed25519_seed: seed });
  try {
    vault.put(RecordType.DEVICE_KEY, plain, serial);
  } finally {
    wipe(seed);
    wipe(plain);
  }
}

/** What is damaged in a provisioned device's store, for a message; null when nothing is. */
function damageOf(health: StoreHealth, vault: Vault): string | null {
  if (health.noLog) return "the partition holds no valid sector";
  if (health.lostKeys.length > 0) {
    return `damaged records: ${health.lostKeys.map(recordName).join(", ")}`;
  }
  if (health.unknownLoss) return "a damaged region may have held records";
  try {
    vault.identity();
  } catch {
    return "the identity record does not authenticate";
  }
  return null;
}

/** An empty, healthy store: nothing to clear before provisioning. */
function isBlank(health: StoreHealth): boolean {
  return health.ok && health.liveRecords === 0 && health.chainSectors === 0;
}

/** A record's name in messages: its type's name, or its number when linkd does not know it. */
function recordName(key: number): string {
  const name = Object.entries(RecordType).find(([, v]) => v === key)?.[0];
  return name === undefined ? `record ${key}` : name.toLowerCase().replace("_", " ");
}
