/**
 * `linkd status`: what a technician or a script needs to know, never a secret.
 * Damage anywhere (store, OTP, identity, tokens) is reported as `store.ok: false` with one line
 * of detail, never as a crash. A device is provisioned once its OTP holds a root key, whatever
 * the flash says: a damaged, erased, empty or missing flash beside a written OTP is damage (with
 * the command that repairs it), never a blank device. Status reads only: it never creates or
 * writes a file (Device.open readOnly). `access_expires_at` is whole Unix milliseconds (an integer, as on
 * the bus) or null.
 */
import { wallMs } from "./bus/payloads.ts";
import { toHex, wipe } from "./bytes.ts";
import type { Device } from "./device.ts";
import { isLinkdError } from "./errors.ts";
import { isoTime } from "./text.ts";
import { REPAIR_HINT, type SignedIdentity } from "./records/identity.ts";
import { RecordType } from "./records/types.ts";
import { decodeTokenRecord } from "./records/token.ts";
import type { Capabilities } from "./contract.ts";
import { capabilities } from "./link/scope_book.ts";
import { decodeScopeBook, EMPTY_BOOK } from "./records/scope_book.ts";

export interface StatusReport {
  provisioned: boolean;
  serial: string | null;
  product_id: string | null;
  client_id: string | null;
  device_public_key: string | null;
  linked: boolean;
  scopes: string[];
  access_expires_at: number | null;
  store: { ok: boolean; detail?: string };
  /**
   * An extension to CONTRACT.md's object: the wanted scopes that are not granted, and why
   * (e.g. "unknown_scope": the security profile is not enabled for it), as on the bus.
   */
  capabilities: Capabilities;
}

function reason(e: unknown): string {
  if (isLinkdError(e)) return e.message;
  return `unexpected ${e instanceof Error ? e.name : "failure"}`;
}

export function statusReport(device: Device): StatusReport {
  const r: StatusReport = {
    provisioned: false,
    serial: null,
    product_id: null,
    client_id: null,
    device_public_key: null,
    linked: false,
    scopes: [],
    access_expires_at: null,
    store: { ok: true },
    capabilities: { granted: [], denied: [] },
  };
  const problems: string[] = [];
  const health = device.store.health;
  if (!health.ok) r.store.ok = false;
  if (health.detail) problems.push(`flash: ${health.detail}`);
  try {
    const otp = device.vaultAndBinding();
    if (otp) {
      // Provisioned once the OTP holds a root key, whatever the flash says (CONTRACT.md 3).
      r.provisioned = true;
      const vault = otp.vault;
      const file = device.flashFile;
      if (file !== "present") {
        r.store.ok = false;
        problems.push(
          `the flash partition ${device.config.flash.path} is ${file} though the OTP holds a root key`,
        );
      }
      let id: SignedIdentity | null = null;
      try {
        id = vault.identity();
        if (id && otp.binding) {
          const i = id.identity;
          const bound = { serial: i.serial, productId: i.product_id, clientId: i.client_id };
          if (!vault.bindingMatches(otp.binding, bound)) {
            id = null;
            r.store.ok = false;
            problems.push("the identity record is not the one the OTP is bound to");
          }
        }
      } catch (e) {
        r.store.ok = false;
        problems.push(`identity: ${reason(e)}`);
      }
      if (otp.binding) wipe(otp.binding);
      if (id) {
        r.serial = id.identity.serial;
        r.product_id = id.identity.product_id;
        r.client_id = id.identity.client_id;
        r.device_public_key = toHex(id.identity.device_public_key);
        try {
          const bytes = vault.get(RecordType.TOKENS);
          if (bytes) {
            const t = decodeTokenRecord(bytes);
            if (t.client_id === id.identity.client_id) {
              r.linked = true;
              r.scopes = [...t.scopes];
              r.access_expires_at = wallMs(t.expires_at);
            } else problems.push("tokens of another client id are ignored");
          }
        } catch (e) {
          r.store.ok = false;
          problems.push(`tokens: ${reason(e)}`);
        }
        let book = EMPTY_BOOK;
        try {
          const bytes = vault.get(RecordType.SCOPES);
          if (bytes) book = decodeScopeBook(bytes);
        } catch (e) {
          r.store.ok = false;
          problems.push(`scopes: ${reason(e)}`);
        }
        r.capabilities = capabilities(device.config.auth.scopes, r.scopes, book);
      } else {
        r.store.ok = false;
        const what = health.lostKeys.includes(RecordType.IDENTITY) || problems.length > 0
          ? "the identity record is damaged"
          : "the flash holds no identity record (provisioning was cut short, or the flash was erased or replaced)";
        problems.push(
          `${what}: the device keeps its identity for life; repair it with ${REPAIR_HINT}`,
        );
      }
    } else if (device.store.keys().length > 0) {
      r.store.ok = false;
      problems.push("the flash holds records but the OTP key store is blank");
    }
  } catch (e) {
    r.store.ok = false;
    problems.push(reason(e));
  }
  if (problems.length) r.store.detail = problems.join("; ");
  return r;
}

/** The human form of the report: one fact a line. */
export function formatStatus(r: StatusReport, now: number): string {
  const lines: [string, string][] = [];
  lines.push(["provisioned", r.provisioned ? "yes" : "no"]);
  if (r.provisioned) {
    // Null on a provisioned device: the flash cannot give the identity (see store).
    const shown = (v: string | null) => v ?? "unreadable (see store)";
    lines.push(["serial", shown(r.serial)]);
    lines.push(["product id", shown(r.product_id)]);
    lines.push(["client id", shown(r.client_id)]);
    lines.push(["device key", shown(r.device_public_key)]);
  }
  lines.push(["linked", r.linked ? "yes" : "no"]);
  lines.push(["scopes", r.scopes.length ? r.scopes.join(" ") : "-"]);
  if (r.capabilities.denied.length) {
    lines.push([
      "not granted",
      r.capabilities.denied.map((d) => `${d.scope} (${d.reason})`).join(" "),
    ]);
  }
  if (r.access_expires_at !== null) {
    const mins = Math.round((r.access_expires_at - now) / 60000);
    const when = isoTime(r.access_expires_at);
    lines.push(["access token", mins > 0 ? `expires ${when} (in ${mins} min)` : `expired ${when}`]);
  } else lines.push(["access token", "none"]);
  lines.push([
    "store",
    (r.store.ok ? "ok" : "DAMAGED") + (r.store.detail ? `: ${r.store.detail}` : ""),
  ]);
  return lines.map(([k, v]) => `${k.padEnd(13)} ${v}`).join("\n");
}
