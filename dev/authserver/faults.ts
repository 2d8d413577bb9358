/**
 * The faults a test or the admin API can inject into the authorization server, and the check
 * that admits them. One fault is in force at a time; `count` bounds how many requests it
 * applies to, `path` which requests:
 *
 *   codepair   both code-pair endpoints (LWA and RFC 8628)
 *   poll       token requests other than refresh (device-code polls, other grant types)
 *   refresh    refresh-grant token requests
 *   token      poll and refresh together
 *   (absent)   every endpoint
 *
 * `slow_down` is answered by the token logic (state.ts), to polls only; every other kind is a
 * transport fault the HTTP layer (server.ts) carries out in place of the real answer.
 */

import { invalidArgument } from "../../src/text.ts";
import { REFRESH_REFUSALS } from "./clients.ts";

/** `count`: how many requests the fault applies to; absent means until cleared. */
export type Fault =
  | { kind: "slow_down"; count?: number; path?: "poll" | "token" }
  | { kind: "status"; status: number; count?: number; path?: FaultPath }
  | { kind: "hang"; count?: number; path?: FaultPath }
  | { kind: "malformed"; count?: number; path?: FaultPath; shape?: "not_json" | "wrong_shape" }
  | { kind: "oversized"; bytes?: number; count?: number; path?: FaultPath }
  | {
    /** That OAuth error as JSON: `servererror`, `invalid_code_pair`, or one nobody knows. */
    kind: "oauth_error";
    error: string;
    /** Default: LWA's words for a known error, a generic sentence otherwise; null: left out. */
    description?: string | null;
    /** 400 to 599; default 400. */
    status?: number;
    count?: number;
    path?: FaultPath;
  }
  | { kind: "scope_page"; count?: number; path?: FaultPath };

export type FaultPath = "codepair" | "token" | "poll" | "refresh";

/** What a request is, as far as faults go. */
export type RequestPath = "codepair" | "poll" | "refresh";

/** The faults the HTTP layer carries out (slow_down is answered by the token logic). */
export type TransportFault = Exclude<Fault, { kind: "slow_down" }>;

/** True when a fault on `path` (absent: every path) applies to a `request`. */
export function faultApplies(path: FaultPath | undefined, request: RequestPath): boolean {
  return path === undefined || path === request || (path === "token" && request !== "codepair");
}

/** The description an `oauth_error` fault sends when it names none. */
export function faultDescription(error: string): string {
  const known: Record<string, string> = {
    ...REFRESH_REFUSALS,
    invalid_request: "The request is invalid",
    servererror: "There was an internal server error",
    server_error: "The authorization server encountered an unexpected condition",
    temporarily_unavailable: "The service is temporarily unavailable",
    invalid_code_pair: "The code pair given is invalid or expired",
    invalid_grant: "The request has an invalid grant parameter",
    expired_token: "The device code has expired",
    access_denied: "The user denied the authorization request",
    authorization_pending: "The user has not yet authorized the device",
    slow_down: "The client is polling too quickly",
    invalid_scope: "An unknown scope was requested",
  };
  return known[error] ?? "The request could not be completed";
}

const KEYS: Record<Fault["kind"], string[]> = {
  slow_down: ["count", "path"],
  status: ["status", "count", "path"],
  hang: ["count", "path"],
  malformed: ["count", "path", "shape"],
  oversized: ["bytes", "count", "path"],
  oauth_error: ["error", "description", "status", "count", "path"],
  scope_page: ["count", "path"],
};

/** Throws a TypeError naming what is wrong with `fault`. */
export function validateFault(fault: unknown): asserts fault is Fault {
  if (typeof fault !== "object" || fault === null || Array.isArray(fault)) {
    throw invalidArgument("Cannot set fault: expected an object or null");
  }
  const f = fault as Record<string, unknown>;
  const kinds = Object.keys(KEYS);
  const kind = f["kind"];
  if (typeof kind !== "string" || !kinds.includes(kind)) {
    throw invalidArgument(`Cannot set fault: kind must be one of ${kinds.join(", ")}`);
  }
  const allowed = KEYS[kind as Fault["kind"]];
  for (const k of Object.keys(f)) {
    if (k !== "kind" && !allowed.includes(k)) {
      throw invalidArgument(`Cannot set fault: ${kind} takes no key ${k}`);
    }
  }
  const count = f["count"];
  if (count !== undefined && !(Number.isInteger(count) && (count as number) >= 0)) {
    throw invalidArgument("Cannot set fault: count must be a whole number");
  }
  const path = f["path"];
  const paths = kind === "slow_down" ? ["poll", "token"] : ["codepair", "token", "poll", "refresh"];
  if (path !== undefined && !paths.includes(path as string)) {
    throw invalidArgument(`Cannot set fault: path must be ${paths.join(", ")}`);
  }
  const status = f["status"];
  if (kind === "status" || (kind === "oauth_error" && status !== undefined)) {
    if (!(Number.isInteger(status) && (status as number) >= 400 && (status as number) <= 599)) {
      throw invalidArgument("Cannot set fault: status must be 400 to 599");
    }
  }
  if (kind === "oversized" && f["bytes"] !== undefined) {
    const b = f["bytes"];
    if (!(Number.isInteger(b) && (b as number) > 0 && (b as number) <= 1 << 30)) {
      throw invalidArgument("Cannot set fault: bytes must be 1 to 2^30");
    }
  }
  if (kind === "malformed" && f["shape"] !== undefined) {
    if (f["shape"] !== "not_json" && f["shape"] !== "wrong_shape") {
      throw invalidArgument("Cannot set fault: shape must be not_json or wrong_shape");
    }
  }
  if (kind === "oauth_error") {
    // RFC 6749 section 5.2: printable ASCII without space, quote or backslash.
    if (typeof f["error"] !== "string" || !/^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/.test(f["error"])) {
      throw invalidArgument(
        "Cannot set fault: error must be an OAuth error code (1 to 64 printable characters, " +
          "no space, quote or backslash)",
      );
    }
    const d = f["description"];
    if (d !== undefined && d !== null && (typeof d !== "string" || d.length > 1024)) {
      throw invalidArgument(
        "Cannot set fault: description must be a string (at most 1024) or null",
      );
    }
  }
}
