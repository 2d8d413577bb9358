/** A provisioned device's vault on an emulated in-memory flash, for link tests and the bench. */
import nacl from "tweetnacl";
import { NorEmulator } from "../../src/flash/nor_emulator.ts";
import { signIdentity } from "../../src/provision/line_signature.ts";
import { RecordStore } from "../../src/store/record_store.ts";
import { Vault } from "../../src/store/vault.ts";

export function provisionedVault(clientId: string, serial: string): Vault {
  const vault = new Vault(
    RecordStore.mount(NorEmulator.memory()),
    nacl.randomBytes(32),
    (n) => nacl.randomBytes(n),
  );
  vault.writeIdentity(signIdentity({
    serial,
    product_id: "speaker",
    client_id: clientId,
    device_public_key: new Uint8Array(32),
    provisioned_at: Date.UTC(2026, 10, 1),
  }));
  return vault;
}
