/**
 * In-process access to an emulated device for the CLI tests: open it as linkd does, read the
 * sealed device key, write a token record as linkd's token code would, and cut the clear header
 * off a sealed record (to search the flash for what must be gone).
 */
import * as assert from "uvu/assert";
import { loadConfig } from "../../src/config.ts";
import { Device } from "../../src/device.ts";
import { decodeCbor } from "../../src/cbor.ts";
import { RecordType } from "../../src/records/types.ts";
import { encodeTokenRecord } from "../../src/records/token.ts";
import { type DeviceDir, latin1, randomToken } from "./cli.ts";

/** Opens the device in this process, runs `fn`, closes it. */
export function withDevice<T>(d: DeviceDir, fn: (device: Device) => T): T {
  const device = Device.open(loadConfig(d.config));
  try {
    return fn(device);
  } finally {
    device.close();
  }
}

export function deviceSeed(device: Device): Uint8Array {
  const plain = device.vault().get(RecordType.DEVICE_KEY);
  assert.ok(plain !== null, "the device key record opens");
  const m = decodeCbor(plain!) as { ed25519_seed?: unknown };
  assert.instance(m.ed25519_seed, Uint8Array);
  return m.ed25519_seed as Uint8Array;
}

export function putTokens(d: DeviceDir, t: {
  access: string;
  refresh: string;
  scopes: string[];
  expiresAt: number;
  clientId: string;
}): Uint8Array {
  return withDevice(d, (device) => {
    device.vault().put(
      RecordType.TOKENS,
      encodeTokenRecord({
        access_token: t.access,
        refresh_token: t.refresh,
        token_type: "bearer",
        scopes: t.scopes,
        expires_in: 3600,
        obtained_at: t.expiresAt - 3600_000,
        expires_at: t.expiresAt,
        client_id: t.clientId,
      }),
    );
    const rec = device.store.get(RecordType.TOKENS);
    assert.ok(rec !== null);
    return rec!.data;
  });
}

/** A user's link as the daemon seals it: random 200-character tokens for alexa:all, an hour left. */
export function putUserTokens(d: DeviceDir, clientId: string): Uint8Array {
  return putTokens(d, {
    access: randomToken("Atza|", 200),
    refresh: randomToken("Atzr|", 200),
    scopes: ["alexa:all"],
    expiresAt: Date.now() + 3600_000,
    clientId,
  });
}

/** The sealed record minus its clear header (magic, type, seq, serial): nonce and ciphertext. */
export function sealedBody(sealed: Uint8Array, serial: string): string {
  return latin1(sealed.subarray(16 + serial.length));
}
