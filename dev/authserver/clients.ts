/**
 * The authorization server's clients (security profiles): what each one may ask for and how the
 * server answers it. `resolveClient` checks a `ClientConfig` from a test or the admin API and
 * fills in every default; a mistake is a TypeError that names the client and the key.
 *
 * Besides lifetimes and token sizes, a client chooses which of Amazon's real answers it gets
 * (see ../shared/PROTOCOL.md): how a scope it is not enabled for is refused (JSON, Amazon's HTML
 * error page, or plain text), whether its refreshes are refused as a web-type or misconfigured
 * security profile's are, how `expires_in` is written, and which error an unknown device code
 * gets.
 */
import { invalidArgument } from "../../src/text.ts";

/** How a code-pair request for a scope not enabled for the client is refused (always 400). */
export type RefusalStyle = "json" | "html" | "text";
/** The OAuth error every refresh of a misconfigured client gets. */
export type RefreshRefusal =
  | "invalid_client"
  | "unauthorized_client"
  | "invalid_request"
  | "unsupported_grant_type";
/** How `expires_in` is written in token answers: 3600, "3600", or left out. */
export type ExpiresInStyle = "number" | "string" | "omit";
/** What a poll with a device code the server does not know (or forgot) gets. */
export type UnknownCodeError = "invalid_code_pair" | "invalid_grant";

export interface ClientConfig {
  clientId: string;
  /** A name shown on the verification page; defaults to the client id. */
  name?: string;
  /** `web`: a refresh without `client_secret` is refused as LWA does. Default `device`. */
  type?: "device" | "web";
  /** Scopes this client may ask for. Default `["alexa:all"]`. */
  enabledScopes?: string[];
  /** Seconds between polls. Default 5. */
  interval?: number;
  /** Seconds a device code lives. Default 600. */
  codeLifetime?: number;
  /** Seconds an access token lives. Default 3600. */
  tokenLifetime?: number;
  /** Each refresh returns a new refresh token. Default true. */
  rotateRefresh?: boolean;
  /** Seconds a rotated refresh token keeps working after its first use. Default 60. */
  refreshGrace?: number;
  /** Characters in an access token, `Atza|` included. Default 1000. */
  accessTokenLength?: number;
  /** Characters in a refresh token, `Atzr|` included. Default 1000. */
  refreshTokenLength?: number;
  /**
   * How a scope not enabled for this client is refused, HTTP 400 each time: `json` (default)
   * `{"error":"invalid_scope",...}`; `html` Amazon's error page; `text` one line of plain text.
   */
  refusalStyle?: RefusalStyle;
  /**
   * Every refresh of this client is refused with this error (a web-type client id, or a
   * security profile not set up for devices). null or absent (default): refreshes work.
   */
  refreshRefusal?: RefreshRefusal | null;
  /** `expires_in` in token answers: `number` (default), `string`, or `omit`. */
  expiresInStyle?: ExpiresInStyle;
  /**
   * The error for a poll with a device code the server does not know or forgot. null or absent
   * (default): the dialect's, `invalid_code_pair` for lwa, `invalid_grant` for rfc8628.
   */
  unknownCodeError?: UnknownCodeError | null;
}

/** A client with every default filled in. */
export type Client = Required<ClientConfig>;

/** LWA's words for each refresh refusal. */
export const REFRESH_REFUSALS: Record<RefreshRefusal, string> = {
  invalid_request: "The request is missing a required parameter : client_secret",
  invalid_client: "Client authentication failed",
  unauthorized_client: "Not authorized for requested operation",
  unsupported_grant_type:
    "The authorization grant type is not supported by the authorization server",
};

const DEFAULTS = {
  type: "device",
  enabledScopes: ["alexa:all"],
  interval: 5,
  codeLifetime: 600,
  tokenLifetime: 3600,
  rotateRefresh: true,
  refreshGrace: 60,
  accessTokenLength: 1000,
  refreshTokenLength: 1000,
  refusalStyle: "json",
  refreshRefusal: null,
  expiresInStyle: "number",
  unknownCodeError: null,
} as const;

const KNOWN = new Set(["clientId", ...Object.keys(DEFAULTS), "name"]);

function oneOf<T extends string>(
  id: string,
  name: string,
  v: unknown,
  allowed: readonly T[],
  nullable = false,
): void {
  if (v === undefined || (nullable && v === null)) return;
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    throw invalidArgument(
      `Cannot add client ${id}: ${name} must be ${allowed.join(", ")}${nullable ? " or null" : ""}`,
    );
  }
}

/** Checks `config` and fills in the defaults; throws a TypeError naming what is wrong. */
export function resolveClient(config: ClientConfig): Client {
  if (typeof config !== "object" || config === null) {
    throw invalidArgument("Cannot add client: expected an object");
  }
  if (typeof config.clientId !== "string" || config.clientId === "") {
    throw invalidArgument("Cannot add client: clientId must be a non-empty string");
  }
  const id = config.clientId;
  for (const k of Object.keys(config)) {
    if (!KNOWN.has(k)) throw invalidArgument(`Cannot add client ${id}: unknown key ${k}`);
  }
  if (config.name !== undefined && typeof config.name !== "string") {
    throw invalidArgument(`Cannot add client ${id}: name must be a string`);
  }
  if (config.type !== undefined && config.type !== "device" && config.type !== "web") {
    throw invalidArgument(`Cannot add client ${id}: type must be device or web`);
  }
  if (
    config.enabledScopes !== undefined &&
    !(Array.isArray(config.enabledScopes) &&
      config.enabledScopes.every((s) => typeof s === "string" && /^\S+$/.test(s)))
  ) {
    throw invalidArgument(`Cannot add client ${id}: enabledScopes must be scopes without spaces`);
  }
  if (config.rotateRefresh !== undefined && typeof config.rotateRefresh !== "boolean") {
    throw invalidArgument(`Cannot add client ${id}: rotateRefresh must be a boolean`);
  }
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw invalidArgument(`Cannot add client ${id}: ${name} must be positive`);
    }
  };
  positive("interval", config.interval);
  positive("codeLifetime", config.codeLifetime);
  positive("tokenLifetime", config.tokenLifetime);
  const grace = config.refreshGrace;
  if (grace !== undefined && !(typeof grace === "number" && grace >= 0 && grace < Infinity)) {
    throw invalidArgument(`Cannot add client ${id}: refreshGrace must be >= 0`);
  }
  for (
    const [name, v] of [
      ["accessTokenLength", config.accessTokenLength],
      ["refreshTokenLength", config.refreshTokenLength],
    ] as const
  ) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 16 && v <= 65536)) {
      throw invalidArgument(`Cannot add client ${id}: ${name} must be 16 to 65536`);
    }
  }
  oneOf(id, "refusalStyle", config.refusalStyle, ["json", "html", "text"]);
  oneOf(
    id,
    "refreshRefusal",
    config.refreshRefusal,
    Object.keys(REFRESH_REFUSALS) as RefreshRefusal[],
    true,
  );
  oneOf(id, "expiresInStyle", config.expiresInStyle, ["number", "string", "omit"]);
  oneOf(id, "unknownCodeError", config.unknownCodeError, [
    "invalid_code_pair",
    "invalid_grant",
  ], true);
  return {
    clientId: id,
    name: config.name ?? id,
    type: config.type ?? DEFAULTS.type,
    enabledScopes: [...(config.enabledScopes ?? DEFAULTS.enabledScopes)],
    interval: config.interval ?? DEFAULTS.interval,
    codeLifetime: config.codeLifetime ?? DEFAULTS.codeLifetime,
    tokenLifetime: config.tokenLifetime ?? DEFAULTS.tokenLifetime,
    rotateRefresh: config.rotateRefresh ?? DEFAULTS.rotateRefresh,
    refreshGrace: config.refreshGrace ?? DEFAULTS.refreshGrace,
    accessTokenLength: config.accessTokenLength ?? DEFAULTS.accessTokenLength,
    refreshTokenLength: config.refreshTokenLength ?? DEFAULTS.refreshTokenLength,
    refusalStyle: config.refusalStyle ?? DEFAULTS.refusalStyle,
    refreshRefusal: config.refreshRefusal ?? DEFAULTS.refreshRefusal,
    expiresInStyle: config.expiresInStyle ?? DEFAULTS.expiresInStyle,
    unknownCodeError: config.unknownCodeError ?? DEFAULTS.unknownCodeError,
  };
}
