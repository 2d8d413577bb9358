/**
 * The two dialects of the device flow (PROTOCOL.md): what each request's form holds.
 *
 * - `lwa`, Login with Amazon code-based linking: code pair `response_type=device_code`,
 *   `client_id`, `scope`, `scope_data`; poll `grant_type=device_code`, `device_code`,
 *   `user_code` and no client id; refresh `grant_type=refresh_token`, `refresh_token`,
 *   `client_id` (no secret).
 * - `rfc8628`, the standard Device Authorization Grant: `client_id`, `scope`; poll
 *   `grant_type=urn:ietf:params:oauth:grant-type:device_code`, `device_code`, `client_id`;
 *   refresh as in RFC 6749 section 6 for a public client.
 *
 * This module owns the rules config.ts checks `auth` against: the dialect names, the LWA regions
 * with their hosts and URLs, and the RFC 6749 scope-token grammar.
 */
import { invalidArgument } from "../text.ts";
import type { CodePair, DeviceIdentity } from "./types.ts";

export type Dialect = "lwa" | "rfc8628";
export type Region = "na" | "eu" | "fe";

/** The LWA regions `auth.region` may take. */
export const REGIONS: readonly Region[] = ["na", "eu", "fe"];

/** The LWA host of each region. */
export const REGION_HOSTS: Readonly<Record<Region, string>> = {
  na: "api.amazon.com",
  eu: "api.amazon.co.uk",
  fe: "api.amazon.co.jp",
};

export interface DialectSpec {
  readonly name: Dialect;
  /** The code-pair (device authorization) request's form. */
  codePairForm(id: DeviceIdentity, scopes: readonly string[]): Record<string, string>;
  /** The token request's form while polling with a code pair. */
  pollForm(pair: CodePair, clientId: string): Record<string, string>;
  /** The refresh request's form. */
  refreshForm(refreshToken: string, clientId: string): Record<string, string>;
  /** Seconds between polls when the code-pair answer names no `interval`. */
  readonly defaultInterval: number;
}

/** The RFC 8628 grant type of the token request. */
export const DEVICE_CODE_GRANT_URN = "urn:ietf:params:oauth:grant-type:device_code";

/** The scope that needs `scope_data` in LWA's code-pair request. */
export const ALEXA_ALL = "alexa:all";

/** LWA paths under each region's host. */
export const LWA_CODEPAIR_PATH = "/auth/O2/create/codepair";
export const LWA_TOKEN_PATH = "/auth/O2/token";

/** The two URLs of the device flow: the code-pair (device authorization) and the token one. */
export interface FlowUrls {
  readonly codepairUrl: string;
  readonly tokenUrl: string;
}

/** The LWA URLs of `region` (on its `REGION_HOSTS` host). */
export function lwaUrls(region: Region): FlowUrls {
  const host = REGION_HOSTS[region];
  return {
    codepairUrl: `https://${host}${LWA_CODEPAIR_PATH}`,
    tokenUrl: `https://${host}${LWA_TOKEN_PATH}`,
  };
}

/** RFC 6749 section 3.3 scope-token, `1*NQCHAR`: visible ASCII except `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Whether `s` is one RFC 6749 scope token (no space, quote, backslash or control character). */
export function isScopeToken(s: unknown): s is string {
  return typeof s === "string" && SCOPE_TOKEN.test(s);
}

/** Checks the scopes (caller's input) and drops repeats, keeping the first order. */
function scopeList(scopes: readonly string[], required: boolean): string[] {
  if (!Array.isArray(scopes)) throw invalidArgument("scopes must be an array of strings");
  if (required && scopes.length === 0) throw invalidArgument("scopes must not be empty");
  const out: string[] = [];
  for (const s of scopes) {
    if (!isScopeToken(s)) {
      throw invalidArgument(
        `scope ${JSON.stringify(String(s)).slice(0, 60)} is not an RFC 6749 scope token`,
      );
    }
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

function nonEmpty(value: string, what: string): string {
  if (typeof value !== "string" || value === "") {
    throw invalidArgument(`${what} must be a non-empty string`);
  }
  return value;
}

/**
 * The `scope_data` LWA wants for the scopes that need data: only `alexa:all` does (its
 * `productID` and `productInstanceAttributes.deviceSerialNumber`, exactly as PROTOCOL.md shows);
 * other scopes (`profile`, `music::...`) take none and get no entry. Undefined when no scope
 * needs data, and then the field is left out of the form.
 */
export function lwaScopeData(id: DeviceIdentity, scopes: readonly string[]): string | undefined {
  const data: Record<string, unknown> = {};
  for (const s of scopes) {
    if (s === ALEXA_ALL) {
      data[s] = {
        productID: id.productId,
        productInstanceAttributes: { deviceSerialNumber: id.serial },
      };
    }
  }
  return Object.keys(data).length === 0 ? undefined : JSON.stringify(data);
}

const lwa: DialectSpec = Object.freeze({
  name: "lwa" as const,
  defaultInterval: 5,
  codePairForm(id: DeviceIdentity, scopes: readonly string[]): Record<string, string> {
    const list = scopeList(scopes, true);
    nonEmpty(id.clientId, "identity.clientId");
    nonEmpty(id.productId, "identity.productId");
    nonEmpty(id.serial, "identity.serial");
    const form: Record<string, string> = {
      response_type: "device_code",
      client_id: id.clientId,
      scope: list.join(" "),
    };
    const data = lwaScopeData(id, list);
    if (data !== undefined) form["scope_data"] = data;
    return form;
  },
  pollForm(pair: CodePair, _clientId: string): Record<string, string> {
    return {
      grant_type: "device_code",
      device_code: nonEmpty(pair.deviceCode, "pair.deviceCode"),
      user_code: nonEmpty(pair.userCode, "pair.userCode"),
    };
  },
  refreshForm(refreshToken: string, clientId: string): Record<string, string> {
    return {
      grant_type: "refresh_token",
      refresh_token: nonEmpty(refreshToken, "refreshToken"),
      client_id: nonEmpty(clientId, "clientId"),
    };
  },
});

const rfc8628: DialectSpec = Object.freeze({
  name: "rfc8628" as const,
  defaultInterval: 5,
  codePairForm(id: DeviceIdentity, scopes: readonly string[]): Record<string, string> {
    const list = scopeList(scopes, false);
    const form: Record<string, string> = { client_id: nonEmpty(id.clientId, "identity.clientId") };
    // The scope is optional in RFC 8628 section 3.1: left out when none is asked for.
    if (list.length > 0) form["scope"] = list.join(" ");
    return form;
  },
  pollForm(pair: CodePair, clientId: string): Record<string, string> {
    return {
      grant_type: DEVICE_CODE_GRANT_URN,
      device_code: nonEmpty(pair.deviceCode, "pair.deviceCode"),
      client_id: nonEmpty(clientId, "clientId"),
    };
  },
  refreshForm(refreshToken: string, clientId: string): Record<string, string> {
    return {
      grant_type: "refresh_token",
      refresh_token: nonEmpty(refreshToken, "refreshToken"),
      client_id: nonEmpty(clientId, "clientId"),
    };
  },
});

/** Each dialect's spec, by name. */
export const DIALECTS: Readonly<Record<Dialect, DialectSpec>> = Object.freeze({ lwa, rfc8628 });

/** The dialect names `auth.dialect` may take: the keys of `DIALECTS`. */
export const DIALECT_NAMES: readonly Dialect[] = Object.freeze(Object.keys(DIALECTS) as Dialect[]);
