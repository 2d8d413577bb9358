/**
 * The shapes of the contract with the audio pipeline (CONTRACT.md section 4, the MQTT bus), in
 * one leaf module that every side reads: the link controller produces them, the bus encodes
 * them (bus/payloads.ts rebuilds each key by key and checks incoming commands), the presenter
 * makes the prompt and display payloads. This file holds types, name lists and the contract's
 * own figures only: no logic, and it imports nothing, so reading it never pulls code upward.
 *
 *   CONTRACT.md section 4              here
 *   `P/state`                          LinkState (`state`: LinkStateName of LINK_STATES;
 *                                      `error`: Problem; `account`: AccountInfo, an extension)
 *   `P/pairing`                        PairingInfo
 *   `P/token`, reply to `cmd/token`    AccessToken
 *   `P/capabilities`                   Capabilities (`denied[].reason`: RefusalReason)
 *   `P/say`                            Say
 *   `P/segment`                        Segment
 *   `P/display`                        Display
 *   `P/cmd/<name>`                     CommandName of COMMANDS; CommandOptions
 *   `cmd/refresh` `{reason?}`          RefreshReason of REFRESH_REASONS; REFRESH_COOLDOWN_MS
 *   replies `{ok, error?}`             Reply, CommandReply (or the token payload); BusCode
 *   `error: {code, message}`           Problem (on `P/state` and in replies)
 *
 * The stored form of a refusal (records/scope_book.ts) takes its reasons from RefusalReason.
 * Payloads may gain keys over time; a shape here gains optional keys, never loses one.
 */

/** `P/state` `state`: the names a link state can have (`offline` is also the last will). */
export const LINK_STATES = [
  "unprovisioned",
  "unlinked",
  "pairing",
  "linked",
  "error",
  "offline",
] as const;
export type LinkStateName = typeof LINK_STATES[number];

/**
 * What went wrong (`error` on `P/state` and in a command reply): a stable code the audio
 * pipeline can act on (listed in the README) and a message for people, never a secret.
 */
export interface Problem {
  code: string;
  message: string;
}

/**
 * Which Amazon account the speaker is linked to, without naming it: `fingerprint` is a keyed
 * hash of the profile's `user_id` (32 hex characters, the same for the same account on this
 * device, unlinkable across devices). `previous` is present when this link replaced another
 * account's: the audio pipeline wipes what it kept for `previous`.
 */
export interface AccountInfo {
  fingerprint: string;
  previous?: string;
}

/** `P/state`: `{state, since, scopes, error?}`, retained. */
export interface LinkState {
  state: LinkStateName;
  /** Wall-clock ms when this state began (an integer). */
  since: number;
  scopes: string[];
  error?: Problem;
  /** Present once the account is known (`profile:user_id` granted and the profile read). */
  account?: AccountInfo;
}

/** `P/pairing`: the code to show, retained while pairing. */
export interface PairingInfo {
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_at: number;
  expires_in: number;
  interval: number;
}

/** `P/token`, and the reply to `cmd/token`: never the refresh token. */
export interface AccessToken {
  access_token: string;
  token_type: string;
  scopes: string[];
  expires_at: number;
  expires_in: number;
}

/** Why a wanted scope is not granted (`P/capabilities` `denied[].reason`). */
export type RefusalReason =
  /** LWA's "400 An unknown scope was requested": the security profile is not enabled for it. */
  | "unknown_scope"
  /** invalid_scope without LWA's wording (RFC 6749/8628 servers). */
  | "invalid_scope"
  /** The server linked but did not grant it (its token answer named fewer scopes). */
  | "not_granted"
  /** Refused before, enabled now: granted after the next re-link (cmd/pair). */
  | "available_after_relink";

/** `P/capabilities`: `{granted: [scope], denied: [{scope, reason}]}`, retained. */
export interface Capabilities {
  granted: string[];
  denied: { scope: string; reason: RefusalReason }[];
}

/** `P/say`: a prompt for the audio pipeline to speak (the code, spelled out). */
export interface Say {
  text: string;
  /** BCP 47 tag of the text's language. */
  lang: string;
}

/** `P/segment`: what an N-digit LED segment display shows, retained while pairing. */
export interface Segment {
  digits: number;
  /** Segments a digit: 7 or 14 (the masks' bit layout, present/segment_font.ts). */
  kind: 7 | 14;
  /** One array per frame, one mask per digit (left to right). */
  frames: number[][];
  frame_ms: number;
}

/** `P/display`: a 1-bit frame for a small screen, retained while pairing. */
export interface Display {
  width: number;
  height: number;
  /** Row-major, MSB first, rows padded to whole bytes; a set bit is ink (present/bitmap.ts). */
  bitmap: Uint8Array;
}

/** The commands of `P/cmd/<name>`. */
export const COMMANDS = ["pair", "logout", "token", "refresh"] as const;
export type CommandName = typeof COMMANDS[number];

/** Options of a command, checked (bus/payloads.ts): only the keys linkd knows, each of its type. */
export type CommandOptions = Record<string, unknown>;

/**
 * The reasons `cmd/refresh` knows. `rejected`: a resource server (AVS, Music) refused the
 * current access token. Any other text is taken as `rejected` (bus/payloads.ts refreshReason()).
 */
export const REFRESH_REASONS = ["rejected"] as const;
export type RefreshReason = typeof REFRESH_REASONS[number];

/** `cmd/refresh` refreshes at most once per this many ms, however many commands arrive. */
export const REFRESH_COOLDOWN_MS = 30_000;

/** The reply to a command: `{ok}` or `{ok: false, error}`. */
export interface Reply {
  ok: boolean;
  error?: Problem;
}

/** What a command handler answers: a Reply, or for `token` the token payload itself. */
export type CommandReply = Reply | AccessToken;

/** The codes of the errors the bus itself answers with. Handlers may add their own. */
export const BusCode = {
  /** The payload is over 4 KiB (bus/payloads.ts MAX_COMMAND_BYTES). */
  TOO_LARGE: "too_large",
  /** The payload is not exactly one well-formed CBOR item. */
  MALFORMED: "malformed",
  /** Well-formed CBOR of the wrong shape: not a map, a non-text key, a tag, a wrong type. */
  BAD_REQUEST: "bad_request",
  /** `P/cmd/<name>` with a name linkd does not know. */
  UNKNOWN_COMMAND: "unknown_command",
  /** Too many commands of this name lately (a token bucket per command). */
  RATE_LIMITED: "rate_limited",
  /** `cmd/token` while linkd holds no valid access token. */
  NO_TOKEN: "no_token",
  /** The handler did not answer in time. */
  TIMEOUT: "timeout",
  /** The handler failed; the message names no secret. */
  INTERNAL: "internal",
  /** A command arrived before linkd set its handler (the first moments of a boot). */
  UNAVAILABLE: "unavailable",
} as const;
