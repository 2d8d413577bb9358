/**
 * The local authorization server's logic, without I/O: clients, device codes, users, tokens,
 * refresh tokens and injected faults. It speaks two dialects (see ../shared/PROTOCOL.md):
 *
 * - `lwa`: Login with Amazon code-based linking (`response_type=device_code`, `scope_data`,
 *   `grant_type=device_code` with `device_code` and `user_code`, no client id on the poll).
 * - `rfc8628`: the OAuth 2.0 Device Authorization Grant (`client_id` and `scope`, the URN grant).
 *
 * Every expiry and interval decision reads the injected Clock's monotonic time, so tests move
 * time with a FakeClock. Randomness comes from an injected `random(n)`.
 *
 * Requests are `URLSearchParams` (the parsed form body); answers are `Reply` values that the
 * HTTP layer (server.ts) sends as JSON with the given status, or as one of Amazon's non-JSON
 * pages (pages.ts) when the reply names one. Client options live in clients.ts, fault kinds in
 * faults.ts, users and the profile endpoint in profile.ts.
 */

import type { Dialect } from "../../src/auth/dialect.ts";
import { invalidArgument } from "../../src/text.ts";
import { type Clock, systemClock } from "../../src/clock.ts";
import { type Client, type ClientConfig, REFRESH_REFUSALS, resolveClient } from "./clients.ts";
import {
  type Fault,
  faultApplies,
  type RequestPath,
  type TransportFault,
  validateFault,
} from "./faults.ts";
import type { PageKind } from "./pages.ts";
import { checkUserId, DEFAULT_USER_ID } from "./profile.ts";

export type { Dialect };

export type { Client, ClientConfig } from "./clients.ts";
export type { Fault, FaultPath, RequestPath, TransportFault } from "./faults.ts";
export { validateFault } from "./faults.ts";

/** An answer: sent as `application/json` with this status, or as `page` when it is set. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
  /** Sent instead of the JSON body (pages.ts); `body` holds the same error as JSON. */
  page?: PageKind;
}

export interface Stats {
  /** Code-pair and device-authorization requests. */
  codepair: number;
  /** Token requests other than refresh (device-code polls, unsupported grants). */
  token: number;
  /** Refresh-grant requests. */
  refresh: number;
  /** Verification page requests. */
  page: number;
  /** `/user/profile` requests. */
  profile: number;
  /** Every non-admin request, by path as sent. */
  byPath: Record<string, number>;
}

export type StatKind = "codepair" | "token" | "refresh" | "page" | "profile" | "other";

/** A code waiting for the user, as the admin API and tests see it. */
export interface PendingCode {
  /** As shown to the user (`ABCDEF`, `BCDF-GHJK`). */
  userCode: string;
  clientId: string;
  scopes: string[];
  dialect: Dialect;
  /** Seconds left. */
  expiresIn: number;
}

/** What the verification page needs to show a code. */
export type CodeLookup =
  | {
    ok: true;
    userCode: string;
    clientId: string;
    clientName: string;
    scopes: string[];
    device: { productId: string; serial: string } | null;
    nonce: string;
  }
  | { ok: false; reason: "unknown" | "expired" | "used" };

export interface AuthStateOptions {
  clock?: Clock;
  random?: (n: number) => Uint8Array;
  clients?: ClientConfig[];
  /** The page a user opens; the server sets it once it knows its port. */
  verificationUri?: string;
  /** Approve every new code at once (for a demo without a browser). */
  autoApprove?: boolean;
  /** The user who approves codes unless one is named; default `DEFAULT_USER_ID`. */
  defaultUserId?: string;
}

/** LWA's exact words for a scope a security profile is not enabled for. */
export const UNKNOWN_SCOPE = "An unknown scope was requested";
/** LWA's exact words for a refresh with a web client id and no secret. */
export const MISSING_SECRET = REFRESH_REFUSALS.invalid_request;

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** RFC 8628 section 6.1: no vowels, no look-alikes. */
export const RFC_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
const LWA_USER_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** A poll this much earlier than the interval is still accepted (timer jitter). */
export const POLL_SLACK_MS = 100;
/** Expired codes are remembered this long, so a late poll gets expired_token, not invalid_grant. */
const EXPIRED_CODE_MEMORY_MS = 3_600_000;

interface DeviceCode {
  deviceCode: string;
  /** Normalised: uppercase, no dashes. */
  userCode: string;
  display: string;
  dialect: Dialect;
  clientId: string;
  scopes: string[];
  device: { productId: string; serial: string } | null;
  expiresAt: number;
  interval: number;
  lastPollAt: number | null;
  status: "pending" | "approved" | "denied" | "redeemed";
  /** Who approved it. */
  userId: string | null;
  nonce: string;
}

/** One user approval; its refresh and access tokens die together. */
interface Grant {
  id: number;
  clientId: string;
  userId: string;
  scopes: string[];
  revoked: boolean;
}

interface RefreshToken {
  grant: Grant;
  /** Monotonic ms after which a rotated token stops working; null while it is current. */
  graceUntil: number | null;
}

interface AccessToken {
  grant: Grant;
  scopes: string[];
  expiresAt: number;
}

function oauthError(error: string, description: string, status = 400): Reply {
  return { status, body: { error, error_description: description } };
}

function missing(name: string): Reply {
  return oauthError("invalid_request", `The request is missing a required parameter : ${name}`);
}

const CLIENT_AUTH_FAILED = REFRESH_REFUSALS.invalid_client;

/** Uppercase, dashes and spaces removed (RFC 8628 section 6.1). */
export function normaliseUserCode(code: string): string {
  return code.replace(/[\s-]/g, "").toUpperCase();
}

function splitScopes(scope: string): string[] {
  return [...new Set(scope.split(" ").filter((s) => s !== ""))];
}

/**
 * Reads single-valued form parameters. A parameter sent twice is an `invalid_request`
 * (RFC 6749 section 3.1); an empty value counts as absent.
 */
function params(form: URLSearchParams): { get(name: string): string | undefined } | Reply {
  const seen = new Map<string, string>();
  for (const [k, v] of form) {
    if (seen.has(k)) return oauthError("invalid_request", `The request repeats a parameter : ${k}`);
    seen.set(k, v);
  }
  return { get: (name) => (seen.get(name) || undefined) };
}

function emptyStats(): Stats {
  return { codepair: 0, token: 0, refresh: 0, page: 0, profile: 0, byPath: {} };
}

function isReply(x: unknown): x is Reply {
  return typeof x === "object" && x !== null && "status" in x && "body" in x;
}

/** Checks LWA's `scope_data`: the JSON string that names the product and the serial. */
function parseScopeData(
  raw: string | undefined,
  scopes: string[],
): { productId: string; serial: string } | null | Reply {
  const needed = scopes.includes("alexa:all");
  if (raw === undefined) return needed ? missing("scope_data") : null;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return oauthError("invalid_request", "The request has an invalid parameter : scope_data");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return oauthError("invalid_request", "The request has an invalid parameter : scope_data");
  }
  if (!needed) return null;
  const alexa = (data as Record<string, unknown>)["alexa:all"];
  const obj = (x: unknown) =>
    typeof x === "object" && x !== null && !Array.isArray(x) ? x as Record<string, unknown> : null;
  const a = obj(alexa);
  const productId = a?.["productID"];
  const serial = obj(a?.["productInstanceAttributes"])?.["deviceSerialNumber"];
  if (typeof productId !== "string" || productId === "") {
    return oauthError("invalid_request", "The request has an invalid parameter : productID");
  }
  if (typeof serial !== "string" || serial === "") {
    return oauthError(
      "invalid_request",
      "The request has an invalid parameter : deviceSerialNumber",
    );
  }
  return { productId, serial };
}

export class AuthState {
  /** The page users open; set by the server once it listens. */
  verificationUri: string;
  /** Approve every new code at once. */
  autoApprove: boolean;
  /** Called after a code is approved (page, admin API or `approve()`). */
  onApprove?: (code: PendingCode) => void;

  readonly #clock: Clock;
  readonly #random: (n: number) => Uint8Array;
  readonly #clients = new Map<string, Client>();
  readonly #codes = new Map<string, DeviceCode>(); // by device code
  readonly #byUserCode = new Map<string, DeviceCode>(); // by normalised user code
  readonly #refresh = new Map<string, RefreshToken>();
  readonly #access = new Map<string, AccessToken>();
  /** Device codes forgotten through `forget()`: whose they were, until when to remember that. */
  readonly #forgotten = new Map<string, { clientId: string; until: number }>();
  #defaultUserId = DEFAULT_USER_ID;
  #grantSeq = 0;
  #fault: Fault | null = null;
  #faultLeft = Infinity;
  #stats: Stats = emptyStats();

  constructor(options: AuthStateOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
    this.verificationUri = options.verificationUri ?? "http://127.0.0.1/code";
    this.autoApprove = options.autoApprove ?? false;
    if (options.defaultUserId !== undefined) this.defaultUserId = options.defaultUserId;
    for (const c of options.clients ?? []) this.addClient(c);
  }

  /**
   * The user who approves a code when none is named: the verification page, auto-approve,
   * `approve(code)`. Setting an id not of LWA's shape throws a TypeError.
   */
  get defaultUserId(): string {
    return this.#defaultUserId;
  }

  set defaultUserId(userId: string) {
    checkUserId(userId);
    this.#defaultUserId = userId;
  }

  // ── clients ──────────────────────────────────────────────────────────────

  /** Adds a client, or replaces the one with the same id (its tokens stay valid). */
  addClient(config: ClientConfig): Client {
    const client = resolveClient(config);
    this.#clients.set(client.clientId, client);
    return { ...client, enabledScopes: [...client.enabledScopes] };
  }

  /** Every client, defaults filled in. */
  clients(): Client[] {
    return [...this.#clients.values()].map((c) => ({ ...c, enabledScopes: [...c.enabledScopes] }));
  }

  /** Lets `clientId` ask for `scope` from now on (the day Amazon enables a profile). */
  enableScope(clientId: string, scope: string): void {
    const c = this.#client(clientId);
    if (!c.enabledScopes.includes(scope)) c.enabledScopes.push(scope);
  }

  /** Stops `clientId` asking for `scope`; tokens already issued keep their scopes. */
  disableScope(clientId: string, scope: string): void {
    const c = this.#client(clientId);
    c.enabledScopes = c.enabledScopes.filter((s) => s !== scope);
  }

  #client(clientId: string): Client {
    const c = this.#clients.get(clientId);
    if (!c) throw invalidArgument(`Cannot find client ${clientId}`);
    return c;
  }

  // ── code pair ────────────────────────────────────────────────────────────

  /** `POST /auth/O2/create/codepair` (lwa) or `POST /oauth2/device_authorization` (rfc8628). */
  codepair(dialect: Dialect, form: URLSearchParams): Reply {
    const p = params(form);
    if (isReply(p)) return p;
    if (dialect === "lwa") {
      const responseType = p.get("response_type");
      if (responseType === undefined) return missing("response_type");
      if (responseType !== "device_code") {
        return oauthError(
          "invalid_request",
          "The request has an invalid parameter : response_type",
        );
      }
    }
    const clientId = p.get("client_id");
    if (clientId === undefined) return missing("client_id");
    const client = this.#clients.get(clientId);
    if (!client) return oauthError("invalid_client", CLIENT_AUTH_FAILED);
    const scopeParam = p.get("scope");
    if (scopeParam === undefined && dialect === "lwa") return missing("scope");
    const scopes = scopeParam === undefined ? [...client.enabledScopes] : splitScopes(scopeParam);
    if (scopes.length === 0) return missing("scope");
    if (scopes.some((s) => !client.enabledScopes.includes(s))) {
      const refusal = oauthError("invalid_scope", UNKNOWN_SCOPE);
      if (client.refusalStyle === "html") refusal.page = "scope_html";
      if (client.refusalStyle === "text") refusal.page = "scope_text";
      return refusal;
    }
    let device: { productId: string; serial: string } | null = null;
    if (dialect === "lwa") {
      const d = parseScopeData(p.get("scope_data"), scopes);
      if (isReply(d)) return d;
      device = d;
    }

    this.#prune();
    const now = this.#clock.monotonic();
    const userCode = this.#newUserCode(dialect);
    const code: DeviceCode = {
      deviceCode: this.#urlSafe(dialect === "lwa" ? 36 : 43),
      userCode,
      display: dialect === "lwa" ? userCode : `${userCode.slice(0, 4)}-${userCode.slice(4)}`,
      dialect,
      clientId,
      scopes,
      device,
      expiresAt: now + client.codeLifetime * 1000,
      interval: client.interval,
      lastPollAt: null,
      status: "pending",
      userId: null,
      nonce: this.#urlSafe(22),
    };
    this.#codes.set(code.deviceCode, code);
    this.#byUserCode.set(userCode, code);
    if (this.autoApprove) this.#approve(code, this.#defaultUserId);

    const body: Record<string, unknown> = {
      user_code: code.display,
      device_code: code.deviceCode,
      verification_uri: this.verificationUri,
      expires_in: client.codeLifetime,
      interval: client.interval,
    };
    if (dialect === "rfc8628") {
      const complete = new URL(this.verificationUri);
      complete.searchParams.set("user_code", code.display);
      body["verification_uri_complete"] = complete.href;
    }
    return { status: 200, body };
  }

  // ── token endpoint ───────────────────────────────────────────────────────

  /** `POST /auth/O2/token` (lwa) or `POST /oauth2/token` (rfc8628): every grant type. */
  token(dialect: Dialect, form: URLSearchParams): Reply {
    const p = params(form);
    if (isReply(p)) return p;
    const grantType = p.get("grant_type");
    if (grantType === undefined) return missing("grant_type");
    if (grantType === "refresh_token") return this.#refreshGrant(dialect, p);
    if (grantType === (dialect === "lwa" ? "device_code" : DEVICE_CODE_GRANT)) {
      return this.#deviceCodeGrant(dialect, p);
    }
    return oauthError(
      "unsupported_grant_type",
      "The authorization grant type is not supported by the authorization server",
    );
  }

  #deviceCodeGrant(dialect: Dialect, p: { get(name: string): string | undefined }): Reply {
    const deviceCode = p.get("device_code");
    if (deviceCode === undefined) return missing("device_code");
    let clientId: string | undefined;
    let userCode: string | undefined;
    if (dialect === "lwa") {
      userCode = p.get("user_code");
      if (userCode === undefined) return missing("user_code");
    } else {
      clientId = p.get("client_id");
      if (clientId === undefined) return missing("client_id");
      if (!this.#clients.has(clientId)) return oauthError("invalid_client", CLIENT_AUTH_FAILED);
    }
    const code = this.#codes.get(deviceCode);
    const invalid = oauthError(
      "invalid_grant",
      "The request has an invalid grant parameter : device_code",
    );
    if (!code || code.dialect !== dialect) return this.#unknownCode(dialect, deviceCode, clientId);
    if (userCode !== undefined && normaliseUserCode(userCode) !== code.userCode) {
      return oauthError("invalid_grant", "The request has an invalid grant parameter : user_code");
    }
    // RFC 6749 section 5.2: a grant issued to another client is invalid_grant.
    if (clientId !== undefined && clientId !== code.clientId) return invalid;
    if (code.status === "redeemed") return invalid;

    const now = this.#clock.monotonic();
    if (now >= code.expiresAt) {
      return oauthError("expired_token", "The device code has expired");
    }
    const tooSoon = code.lastPollAt !== null &&
      now - code.lastPollAt < code.interval * 1000 - POLL_SLACK_MS;
    code.lastPollAt = now;
    if (tooSoon || this.#takeFault("slow_down", "poll")) {
      code.interval += 5;
      return oauthError("slow_down", "The client is polling too quickly");
    }
    if (code.status === "denied") {
      return oauthError("access_denied", "The user denied the authorization request");
    }
    if (code.status === "pending") {
      return oauthError("authorization_pending", "The user has not yet authorized the device");
    }
    code.status = "redeemed";
    const client = this.#clients.get(code.clientId);
    if (!client) return invalid; // removed since; cannot happen through the public API
    const grant: Grant = {
      id: ++this.#grantSeq,
      clientId: code.clientId,
      userId: code.userId ?? this.#defaultUserId,
      scopes: code.scopes,
      revoked: false,
    };
    const refreshToken = this.#issueRefresh(client, grant);
    return this.#tokenReply(dialect, client, grant, grant.scopes, refreshToken);
  }

  /**
   * A poll with a device code the server never issued or forgot: the error of the client it
   * belonged to (or, rfc8628, the client named); an lwa poll names no client, so a code never
   * issued gets the error all clients agree on, else the dialect's.
   */
  #unknownCode(dialect: Dialect, deviceCode: string, clientId: string | undefined): Reply {
    const owner = this.#forgotten.get(deviceCode)?.clientId ?? clientId;
    const fallback = dialect === "lwa" ? "invalid_code_pair" : "invalid_grant";
    const errorOf = (c: Client | undefined) => c?.unknownCodeError ?? fallback;
    let error: string = fallback;
    if (owner !== undefined) error = errorOf(this.#clients.get(owner));
    else {
      const all = new Set([...this.#clients.values()].map(errorOf));
      if (all.size === 1) error = [...all][0]!;
    }
    return error === "invalid_code_pair"
      ? oauthError("invalid_code_pair", "The code pair given is invalid or expired")
      : oauthError("invalid_grant", "The request has an invalid grant parameter : device_code");
  }

  #refreshGrant(dialect: Dialect, p: { get(name: string): string | undefined }): Reply {
    const token = p.get("refresh_token");
    if (token === undefined) return missing("refresh_token");
    const clientId = p.get("client_id");
    if (clientId === undefined) return missing("client_id");
    const client = this.#clients.get(clientId);
    if (!client) return oauthError("invalid_client", CLIENT_AUTH_FAILED);
    if (client.refreshRefusal !== null) {
      return oauthError(client.refreshRefusal, REFRESH_REFUSALS[client.refreshRefusal]);
    }
    if (client.type === "web" && p.get("client_secret") === undefined) {
      return dialect === "lwa"
        ? oauthError("invalid_request", MISSING_SECRET)
        : oauthError("invalid_client", CLIENT_AUTH_FAILED);
    }
    const invalid = oauthError(
      "invalid_grant",
      "The request has an invalid grant parameter : refresh_token",
    );
    const entry = this.#refresh.get(token);
    const now = this.#clock.monotonic();
    if (!entry || entry.grant.revoked) return invalid;
    if (entry.graceUntil !== null && now >= entry.graceUntil) {
      this.#refresh.delete(token);
      return invalid;
    }
    if (entry.grant.clientId !== clientId) {
      // LWA names the client; RFC 6749 section 6 calls a token of another client invalid_grant.
      return dialect === "lwa" ? oauthError("invalid_client", CLIENT_AUTH_FAILED) : invalid;
    }
    let scopes = entry.grant.scopes;
    const scopeParam = p.get("scope");
    if (scopeParam !== undefined) {
      // RFC 6749 section 6: a refresh may narrow the scope, never widen it.
      const asked = splitScopes(scopeParam);
      if (asked.some((s) => !scopes.includes(s))) {
        return oauthError("invalid_scope", "The requested scope exceeds the scope granted");
      }
      if (asked.length > 0) scopes = asked;
    }
    let refreshToken = token;
    if (client.rotateRefresh) {
      if (entry.graceUntil === null) entry.graceUntil = now + client.refreshGrace * 1000;
      refreshToken = this.#issueRefresh(client, entry.grant);
    }
    const reply = this.#tokenReply(dialect, client, entry.grant, scopes, refreshToken);
    // RFC 6749 section 6: a refresh answer without a new refresh token means keep the old one.
    if (dialect === "rfc8628" && !client.rotateRefresh) delete reply.body["refresh_token"];
    return reply;
  }

  #issueRefresh(client: Client, grant: Grant): string {
    const token = "Atzr|" + this.#urlSafe(client.refreshTokenLength - 5);
    this.#refresh.set(token, { grant, graceUntil: null });
    return token;
  }

  #tokenReply(
    dialect: Dialect,
    client: Client,
    grant: Grant,
    scopes: string[],
    refreshToken: string,
  ): Reply {
    const accessToken = "Atza|" + this.#urlSafe(client.accessTokenLength - 5);
    const now = this.#clock.monotonic();
    this.#pruneAccess(now);
    this.#access.set(accessToken, {
      grant,
      scopes,
      expiresAt: now + client.tokenLifetime * 1000,
    });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      refresh_token: refreshToken,
      token_type: dialect === "lwa" ? "bearer" : "Bearer",
    };
    // RFC 6749 section 5.1 calls expires_in RECOMMENDED only; some servers send a string.
    if (client.expiresInStyle === "number") body["expires_in"] = client.tokenLifetime;
    if (client.expiresInStyle === "string") body["expires_in"] = String(client.tokenLifetime);
    if (dialect === "rfc8628") body["scope"] = scopes.join(" ");
    return { status: 200, body };
  }

  /** What an access token stands for, as a resource server would see it (RFC 7662 shape). */
  introspect(accessToken: string): {
    active: boolean;
    client_id?: string;
    scope?: string;
    expires_in?: number;
  } {
    const a = this.#access.get(accessToken);
    const now = this.#clock.monotonic();
    if (!a || a.grant.revoked || now >= a.expiresAt) return { active: false };
    return {
      active: true,
      client_id: a.grant.clientId,
      scope: a.scopes.join(" "),
      expires_in: Math.ceil((a.expiresAt - now) / 1000),
    };
  }

  /**
   * Whose an active access token is, as a resource server (`/user/profile`) sees it; null for
   * an unknown, expired or revoked token.
   */
  tokenOwner(accessToken: string): { userId: string; clientId: string; scopes: string[] } | null {
    const a = this.#access.get(accessToken);
    if (!a || a.grant.revoked || this.#clock.monotonic() >= a.expiresAt) return null;
    return { userId: a.grant.userId, clientId: a.grant.clientId, scopes: [...a.scopes] };
  }

  // ── the user's decision ──────────────────────────────────────────────────

  /** Looks a code up for the verification page; case and dashes are ignored. */
  lookup(userCode: string): CodeLookup {
    const code = this.#byUserCode.get(normaliseUserCode(userCode));
    if (!code) return { ok: false, reason: "unknown" };
    if (this.#clock.monotonic() >= code.expiresAt) return { ok: false, reason: "expired" };
    if (code.status !== "pending") return { ok: false, reason: "used" };
    return {
      ok: true,
      userCode: code.display,
      clientId: code.clientId,
      clientName: this.#clients.get(code.clientId)?.name ?? code.clientId,
      scopes: [...code.scopes],
      device: code.device,
      nonce: code.nonce,
    };
  }

  /**
   * The page's decision: only with the nonce shown on the confirmation step, so a form posted
   * from elsewhere cannot approve blind. Returns what `lookup` would have said on failure.
   */
  decide(userCode: string, nonce: string, approve: boolean): CodeLookup {
    const found = this.lookup(userCode);
    if (!found.ok) return found;
    if (found.nonce !== nonce) return { ok: false, reason: "unknown" };
    if (approve) this.approve(userCode);
    else this.deny(userCode);
    return found;
  }

  /**
   * Approves a pending, unexpired code as `userId` (default: `defaultUserId`); the grant and
   * every token of it remember the user. Returns false when there is no such code; throws a
   * TypeError for a user id not of LWA's shape.
   */
  approve(userCode: string, userId?: string): boolean {
    if (userId !== undefined) checkUserId(userId);
    const code = this.#pendingCode(userCode);
    if (!code) return false;
    this.#approve(code, userId ?? this.#defaultUserId);
    return true;
  }

  #approve(code: DeviceCode, userId: string): void {
    code.status = "approved";
    code.userId = userId;
    this.onApprove?.(this.#pendingView(code));
  }

  /** Denies a pending, unexpired code. Returns false when there is none. */
  deny(userCode: string): boolean {
    const code = this.#pendingCode(userCode);
    if (!code) return false;
    code.status = "denied";
    return true;
  }

  #pendingCode(userCode: string): DeviceCode | null {
    const code = this.#byUserCode.get(normaliseUserCode(userCode));
    if (!code || code.status !== "pending") return null;
    if (this.#clock.monotonic() >= code.expiresAt) return null;
    return code;
  }

  #pendingView(code: DeviceCode): PendingCode {
    return {
      userCode: code.display,
      clientId: code.clientId,
      scopes: [...code.scopes],
      dialect: code.dialect,
      expiresIn: Math.max(0, Math.ceil((code.expiresAt - this.#clock.monotonic()) / 1000)),
    };
  }

  /**
   * Forgets the code `userCode` names, or every code when it is absent, as LWA loses a code
   * pair: the device's next poll gets the client's `unknownCodeError`, the page says the code is
   * not valid. Codes already redeemed are left alone. Returns how many codes were forgotten.
   */
  forget(userCode?: string): number {
    const wanted = userCode === undefined ? null : normaliseUserCode(userCode);
    const now = this.#clock.monotonic();
    let n = 0;
    for (const [k, c] of this.#codes) {
      if (c.status === "redeemed" || (wanted !== null && c.userCode !== wanted)) continue;
      this.#codes.delete(k);
      if (this.#byUserCode.get(c.userCode) === c) this.#byUserCode.delete(c.userCode);
      this.#forgotten.set(k, {
        clientId: c.clientId,
        until: Math.max(now, c.expiresAt) + EXPIRED_CODE_MEMORY_MS,
      });
      n++;
    }
    return n;
  }

  /** Codes waiting for the user, oldest first. */
  pending(): PendingCode[] {
    const now = this.#clock.monotonic();
    return [...this.#codes.values()]
      .filter((c) => c.status === "pending" && now < c.expiresAt)
      .map((c) => this.#pendingView(c));
  }

  // ── revocation ───────────────────────────────────────────────────────────

  /**
   * Revokes the grant `token` belongs to, as deregistering the device in the Alexa app does:
   * that refresh token, those rotated from or to it, and their access tokens. Returns false
   * for an unknown token.
   */
  revokeRefreshToken(token: string): boolean {
    const entry = this.#refresh.get(token);
    if (!entry) return false;
    entry.grant.revoked = true;
    return true;
  }

  /** Revokes every grant of `clientId`; returns how many there were. */
  revokeClient(clientId: string): number {
    const grants = new Set<Grant>();
    for (const r of this.#refresh.values()) {
      if (r.grant.clientId === clientId && !r.grant.revoked) grants.add(r.grant);
    }
    for (const g of grants) g.revoked = true;
    return grants.size;
  }

  // ── faults ───────────────────────────────────────────────────────────────

  /** Sets the fault (replacing any other), or clears it with null. */
  setFault(fault: Fault | null): void {
    if (fault !== null) validateFault(fault);
    this.#fault = fault === null ? null : { ...fault };
    this.#faultLeft = fault?.count ?? Infinity;
    if (this.#faultLeft <= 0) this.#fault = null;
  }

  /** The fault in force and how many requests it still applies to (null: until cleared). */
  fault(): { fault: Fault; left: number | null } | null {
    if (!this.#fault) return null;
    return {
      fault: { ...this.#fault },
      left: Number.isFinite(this.#faultLeft) ? this.#faultLeft : null,
    };
  }

  /** The transport fault for a request, consuming one use; null when none applies. */
  takeTransportFault(request: RequestPath): TransportFault | null {
    const f = this.#fault;
    if (!f || f.kind === "slow_down") return null;
    return this.#takeFault(f.kind, request) ? f : null;
  }

  #takeFault(kind: Fault["kind"], request: RequestPath): boolean {
    const f = this.#fault;
    if (!f || f.kind !== kind || !faultApplies(f.path, request)) return false;
    if (--this.#faultLeft <= 0) this.#fault = null;
    return true;
  }

  // ── statistics ───────────────────────────────────────────────────────────

  /** Counts one request (the HTTP layer calls this for every non-admin request). */
  count(path: string, kind: StatKind): void {
    if (kind !== "other") this.#stats[kind]++;
    this.#stats.byPath[path] = (this.#stats.byPath[path] ?? 0) + 1;
  }

  stats(): Stats {
    return { ...this.#stats, byPath: { ...this.#stats.byPath } };
  }

  resetStats(): void {
    this.#stats = emptyStats();
  }

  // ── helpers ──────────────────────────────────────────────────────────────

  #bytes(n: number): Uint8Array {
    const b = this.#random(n);
    if (!(b instanceof Uint8Array) || b.length < n) {
      throw invalidArgument(`Cannot draw random bytes: asked for ${n}, got ${b?.length}`);
    }
    return b;
  }

  #urlSafe(n: number): string {
    const b = this.#bytes(n);
    let s = "";
    for (let i = 0; i < n; i++) s += URL_SAFE[b[i]! & 63];
    return s;
  }

  /** `n` characters of `alphabet`, uniformly (bytes past the last whole multiple are redrawn). */
  #pick(alphabet: string, n: number): string {
    const limit = 256 - (256 % alphabet.length);
    let s = "";
    for (let round = 0; s.length < n; round++) {
      if (round > 64) throw new Error("Cannot draw a user code: the random source is stuck");
      for (const x of this.#bytes(n * 2)) {
        if (x < limit && s.length < n) s += alphabet[x % alphabet.length];
      }
    }
    return s;
  }

  #newUserCode(dialect: Dialect): string {
    for (let i = 0; i < 32; i++) {
      const code = dialect === "lwa"
        ? this.#pick(LWA_USER_CODE_ALPHABET, 6)
        : this.#pick(RFC_USER_CODE_ALPHABET, 8);
      if (!this.#byUserCode.has(code)) return code;
    }
    throw new Error("Cannot draw a user code: every draw collides with a live code");
  }

  /** Forgets codes expired long ago, so a long demo does not grow without bound. */
  #prune(): void {
    const now = this.#clock.monotonic();
    for (const [k, f] of this.#forgotten) if (now >= f.until) this.#forgotten.delete(k);
    for (const [k, c] of this.#codes) {
      if (now >= c.expiresAt + EXPIRED_CODE_MEMORY_MS) {
        this.#codes.delete(k);
        if (this.#byUserCode.get(c.userCode) === c) this.#byUserCode.delete(c.userCode);
      }
    }
  }

  #pruneAccess(now: number): void {
    for (const [k, a] of this.#access) {
      if (now >= a.expiresAt || a.grant.revoked) this.#access.delete(k);
    }
  }
}
