/**
 * The vault: linkd's typed records on top of the record store, sealed with keys that derive
 * from the OTP root key. A copy of the flash alone reveals nothing of a sealed record.
 *
 * - IDENTITY is stored in the clear (it is what `status` shows and the line signed), inside an
 *   envelope authenticated with a MAC keyed from the root key, so a changed serial or client id
 *   is noticed. Its serial binds every sealed record to this device.
 * - Every other record is sealed (seal/sealer.ts) under a header of its type, format version,
 *   the store's sequence number and the device serial: moved, replayed or copied records fail.
 *
 * The slots and each record's format are in records/ (types.ts lists the slots).
 */
import { invalidArgument } from "../text.ts";
import { timingSafeEqual, wipe } from "../bytes.ts";
import { decodeCbor, encodeCbor } from "../cbor.ts";
import { Code, LinkdError } from "../errors.ts";
import { decodeEnvelope, encodeEnvelope, type SignedIdentity } from "../records/identity.ts";
import { RecordType } from "../records/types.ts";
import { bindingMatches, type BoundIdentity, deviceSeed } from "../seal/binding.ts";
import { deriveKey, hmacSha512 } from "../seal/hmac.ts";
import { Sealer } from "../seal/sealer.ts";
import type { RecordStore } from "./record_store.ts";

export const FORMAT_VERSION = 1;
const IDENTITY_MAC_LABEL = "linkd/v1/identity-mac";
const FINGERPRINT_LABEL = "linkd/v1/fingerprint/";
const FINGERPRINT_BYTES = 16;
const MAC_BYTES = 32;

export class Vault {
  readonly store: RecordStore;
  #rootKey: Uint8Array;
  #sealer: Sealer;
  #identity: SignedIdentity | null | undefined;

  /** `rootKey` is copied; the caller may wipe its own copy. */
  constructor(store: RecordStore, rootKey: Uint8Array, random: (n: number) => Uint8Array) {
    this.store = store;
    this.#rootKey = rootKey.slice();
    this.#sealer = new Sealer(this.#rootKey, random);
  }

  /** Wipes the key material this vault holds. */
  dispose(): void {
    wipe(this.#rootKey);
    this.#sealer.dispose();
  }

  /** The provisioned identity, or null on a blank device. IDENTITY_CORRUPT when it fails checks. */
  identity(): SignedIdentity | null {
    if (this.#identity !== undefined) return this.#identity;
    const rec = this.store.get(RecordType.IDENTITY);
    if (!rec) return (this.#identity = null);
    const m = decodeCbor(rec.data, "identity entry") as Record<string, unknown> | null;
    const envelope = m?.envelope;
    const mac = m?.mac;
    if (
      !(envelope instanceof Uint8Array) || !(mac instanceof Uint8Array) || mac.length !== MAC_BYTES
    ) {
      throw new LinkdError(
        Code.IDENTITY_CORRUPT,
        "Cannot read the identity record: its entry is malformed",
      );
    }
    if (!timingSafeEqual(mac, this.#mac(envelope))) {
      throw new LinkdError(
        Code.IDENTITY_CORRUPT,
        "Cannot read the identity record: it does not authenticate with this device's root key",
      );
    }
    return (this.#identity = decodeEnvelope(envelope));
  }

  /** The device's Ed25519 seed, derived from the root key (seal/binding.ts); the caller wipes it. */
  deviceSeed(): Uint8Array {
    return deviceSeed(this.#rootKey);
  }

  /** True when the OTP's identity `binding` commits to `id` under this device's root key. */
  bindingMatches(binding: Uint8Array, id: BoundIdentity): boolean {
    return bindingMatches(this.#rootKey, binding, id);
  }

  /** Writes the identity, last step of provisioning: from then on the device is provisioned. */
  writeIdentity(signed: SignedIdentity): void {
    const envelope = encodeEnvelope(signed);
    this.store.put(RecordType.IDENTITY, encodeCbor({ envelope, mac: this.#mac(envelope) }));
    this.#identity = undefined;
  }

  /** Seals and stores `plaintext` in slot `type`. Needs the identity's serial, unless given. */
  put(type: RecordType, plaintext: Uint8Array, serial = this.#serial()): void {
    if (type === RecordType.IDENTITY) {
      throw invalidArgument("Vault.put() cannot write the identity");
    }
    const seq = this.store.allocateSeq();
    const sealed = this.#sealer.seal({ type, version: FORMAT_VERSION, seq, serial }, plaintext);
    this.store.put(type, sealed, seq);
  }

  /** Opens the record in slot `type`, or null when there is none. Seal errors are coded. */
  get(type: RecordType, serial = this.#serial()): Uint8Array | null {
    const rec = this.store.get(type);
    if (!rec) return null;
    return this.#sealer.open(rec.data, { type, seq: rec.seq, serial }).plaintext;
  }

  delete(type: RecordType): void {
    this.store.delete(type);
  }

  #serial(): string {
    const id = this.identity();
    if (!id) {
      throw new LinkdError(
        Code.NOT_PROVISIONED,
        "Cannot use sealed records: the device is not provisioned",
      );
    }
    return id.identity.serial;
  }

  /**
   * A keyed fingerprint of `data` for `purpose` (e.g. "account"): 32 hex characters, the same
   * for the same input on this device, unlinkable across devices and irreversible without the
   * OTP root key (an account id is guessable; its hash alone would not hide it).
   */
  fingerprint(purpose: string, data: Uint8Array): string {
    const key = deriveKey(this.#rootKey, FINGERPRINT_LABEL + purpose);
    const mac = hmacSha512(key, data);
    wipe(key);
    let hex = "";
    for (const b of mac.subarray(0, FINGERPRINT_BYTES)) hex += b.toString(16).padStart(2, "0");
    wipe(mac);
    return hex;
  }

  #mac(envelope: Uint8Array): Uint8Array {
    const key = deriveKey(this.#rootKey, IDENTITY_MAC_LABEL);
    const mac = hmacSha512(key, envelope).slice(0, MAC_BYTES);
    wipe(key);
    return mac;
  }
}
