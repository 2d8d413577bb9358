/**
 * What went wrong, as the `error` of a link state or a command reply: a stable code the audio
 * pipeline can act on and a message for people, never a secret (no token, no body, no account
 * id). The codes are listed in the README; this module is their one home for the link.
 */
import { isClientRejection, OAuthError, ProtocolError, TransportError } from "../auth/errors.ts";
import type { Problem } from "../contract.ts";
import { isLinkdError } from "../errors.ts";

/** The server refused every scope asked for, the fallback scopes too. */
export class NoScopeError extends Error {
  constructor() {
    super("The server refused every scope asked for, and the fallback scopes too");
  }
}

/** Why a refused client is refused, by OAuth error: the likely cause, for the person fixing it. */
const CLIENT_CAUSES: Readonly<Record<string, string>> = {
  invalid_request:
    "it wants a client secret, so the client id is probably a web-type id; provision the security profile's id for other devices and platforms",
  invalid_client:
    "it does not accept this client id; check that the security profile's id for other devices and platforms was provisioned",
  unauthorized_client:
    "this client id may not use the device grant; set the security profile up for other devices and platforms",
  unsupported_grant_type:
    "it does not offer this grant to this client id; set the security profile up for other devices and platforms",
};

/**
 * `client_rejected`: the authorization server refuses this client or this grant for it, a
 * misconfigured security profile. Retrying cannot help: no refresh until `cmd/pair` or a restart.
 */
export function clientRejected(e: OAuthError): Problem {
  const cause = CLIENT_CAUSES[e.error] ?? "the security profile is not set up for this device";
  return {
    code: "client_rejected",
    message: `The authorization server refuses this client (${e.error}): ${cause}`,
  };
}

/** A failure as the `error` of a state. */
export function problemOf(e: unknown): Problem {
  if (isClientRejection(e)) return clientRejected(e);
  if (e instanceof OAuthError) {
    const d = e.errorDescription ? `: ${e.errorDescription.slice(0, 160)}` : "";
    return { code: e.error.slice(0, 64), message: `The authorization server refused${d}` };
  }
  if (e instanceof TransportError) {
    const code = e.kind === "clock_unset"
      ? "clock_unset"
      : e.kind === "timeout"
      ? "timeout"
      : "network";
    const message = e.kind === "clock_unset"
      ? "TLS failed and the clock looks unset: retrying once the time is set"
      : `Cannot reach the authorization server (${e.kind})`;
    return { code, message };
  }
  if (e instanceof ProtocolError) {
    // A 5xx is the server's trouble; anything else (an HTML page where JSON belongs, a bad
    // field) is an answer linkd cannot use.
    const busy = e.status !== undefined && e.status >= 500;
    return { code: busy ? "server_error" : "protocol", message: e.message.slice(0, 200) };
  }
  if (e instanceof NoScopeError) return { code: "no_scope", message: e.message };
  if (isLinkdError(e)) return { code: "store", message: e.message };
  return { code: "internal", message: `Unexpected ${e instanceof Error ? e.name : "failure"}` };
}

/**
 * `store_damaged`: the flash cannot give the device its identity (damaged, erased, or no valid
 * sector) though the OTP says it is provisioned. linkd writes nothing until it is repaired.
 */
export function storeDamaged(detail: string): Problem {
  return { code: "store_damaged", message: detail.slice(0, 300) };
}

export const NOT_LINKED: Problem = Object.freeze({
  code: "not_linked",
  message: "Not linked: there is no token to refresh",
});
