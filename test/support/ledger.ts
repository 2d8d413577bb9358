/**
 * Signed identities for ledger tests, made as the line makes them: the record is the CBOR
 * identity record (records/identity.ts), signed with a line key by tweetnacl.
 */
import nacl from "tweetnacl";
import { encodeIdentity, type SignedIdentity } from "../../src/records/identity.ts";

/** A fixed line key pair for tests. */
export const LINE = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(0x4c));

/** A device's signed identity: `serial`, a device key from `keySeed`, provisioned at `at`. */
export function signedDevice(
  serial: string,
  keySeed: number,
  at = 1_790_000_000_000,
  o: { productId?: string; clientId?: string; line?: nacl.SignKeyPair | null } = {},
): SignedIdentity {
  const identity = {
    serial,
    product_id: o.productId ?? "speaker",
    client_id: o.clientId ?? "amzn1.application-oa2-client.line",
    device_public_key: nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(keySeed)).publicKey,
    provisioned_at: at,
  };
  const record = encodeIdentity(identity);
  const line = o.line === undefined ? LINE : o.line;
  if (line === null) return { identity, record };
  return {
    identity,
    record,
    signature: nacl.sign.detached(record, line.secretKey),
    line_public_key: line.publicKey,
  };
}
