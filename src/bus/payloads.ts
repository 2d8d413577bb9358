/**
 * The bus payloads of CONTRACT.md section 4 as plain objects, and the checks every incoming
 * command passes before linkd acts on it. Their shapes and names are in ../contract.ts.
 *
 * Outgoing payloads are rebuilt key by key from the contract, so a field linkd keeps for itself
 * never reaches the bus by accident. Every `*_at` and `since` leaves here as a non-negative
 * integer of at most 2^53 - 1 (CBOR major type 0: src/cbor.ts writes whole numbers above 32 bits
 * as integers, where cbor-x alone would write a float64) and `expires_in` as whole seconds;
 * a time that is not a finite number is left out rather than sent as a float.
 *
 * Incoming commands are untrusted bytes: bounded, checked for plain CBOR (one well-formed item,
 * maps with text keys, no tags), then typed option by option.
 * Every refusal is a `Problem` (a BusCode and a message); nothing here throws on hostile input.
 */
import { decodeCbor } from "../cbor.ts";
import {
  type AccessToken,
  type AccountInfo,
  BusCode,
  type Capabilities,
  type CommandName,
  type CommandOptions,
  type CommandReply,
  COMMANDS,
  type Display,
  type LinkState,
  type PairingInfo,
  type Problem,
  REFRESH_REASONS,
  type RefreshReason,
  type Reply,
  type Say,
  type Segment,
} from "../contract.ts";

/** The largest command payload linkd decodes, in bytes; a larger one is refused unread. */
export const MAX_COMMAND_BYTES = 4096;
/** The deepest nesting of arrays and maps a command may have. */
export const MAX_COMMAND_DEPTH = 8;

export function isCommandName(name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name);
}

export function isTokenReply(r: CommandReply): r is AccessToken {
  return typeof (r as Partial<AccessToken>).access_token === "string";
}

export function okReply(): Reply {
  return { ok: true };
}

export function errorReply(code: string, message: string): Reply {
  return { ok: false, error: { code, message } };
}

/** The `reason` option of `cmd/refresh` as linkd acts on it: absent or unknown is `rejected`. */
export function refreshReason(v: unknown): RefreshReason {
  return (REFRESH_REASONS as readonly unknown[]).includes(v) ? v as RefreshReason : "rejected";
}

// ── times ────────────────────────────────────────────────────────────────────────────────────

/**
 * A wall-clock time (`*_at`, `since`) as the contract writes it: whole Unix milliseconds, a
 * CBOR major type 0 integer. Null when `v` is not a finite, non-negative number whose floor is
 * a safe integer (beyond 2^53 - 1 the encoder could only write a float).
 */
export function wallMs(v: unknown): number | null {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) return null;
  const ms = Math.floor(v) + 0; // + 0: never -0
  return Number.isSafeInteger(ms) ? ms : null;
}

/** Seconds from now (`expires_in`) as whole seconds, 0 once past; null when not a number. */
export function wholeSeconds(v: unknown): number | null {
  if (typeof v !== "number" || !Number.isFinite(v)) return null;
  const s = Math.max(0, Math.floor(v)) + 0;
  return Number.isSafeInteger(s) ? s : null;
}

/** Sets `o[key]` unless `v` is null: a time that cannot go out as an integer is left out. */
function put(o: Record<string, unknown>, key: string, v: number | null): void {
  if (v !== null) o[key] = v;
}

// ── outgoing ─────────────────────────────────────────────────────────────────────────────────

export function statePayload(s: LinkState): Record<string, unknown> {
  const o: Record<string, unknown> = { state: s.state };
  put(o, "since", wallMs(s.since));
  o.scopes = [...s.scopes];
  if (s.error) o.error = { code: s.error.code, message: s.error.message };
  const account = accountPayload(s.account);
  if (account) o.account = account;
  return o;
}

/** `account` of `P/state`: `{fingerprint, previous?}`, text only; anything else is left out. */
function accountPayload(a: AccountInfo | undefined): Record<string, unknown> | null {
  if (a === undefined || a === null || typeof a.fingerprint !== "string") return null;
  const o: Record<string, unknown> = { fingerprint: a.fingerprint };
  if (typeof a.previous === "string") o.previous = a.previous;
  return o;
}

/** The last will and the state `close()` publishes: `offline`, no scopes. */
export function offlineState(since: number): LinkState {
  return { state: "offline", since, scopes: [] };
}

export function pairingPayload(p: PairingInfo): Record<string, unknown> {
  const o: Record<string, unknown> = {
    user_code: p.user_code,
    verification_uri: p.verification_uri,
  };
  if (p.verification_uri_complete !== undefined) {
    o.verification_uri_complete = p.verification_uri_complete;
  }
  put(o, "expires_at", wallMs(p.expires_at));
  put(o, "expires_in", wholeSeconds(p.expires_in));
  o.interval = p.interval;
  return o;
}

/** `P/token`, and the reply to `cmd/token`: never the refresh token. */
export function tokenPayload(t: AccessToken): Record<string, unknown> {
  const o: Record<string, unknown> = {
    access_token: t.access_token,
    token_type: t.token_type,
    scopes: [...t.scopes],
  };
  put(o, "expires_at", wallMs(t.expires_at));
  put(o, "expires_in", wholeSeconds(t.expires_in));
  return o;
}

export function capabilitiesPayload(c: Capabilities): Record<string, unknown> {
  return {
    granted: [...c.granted],
    denied: c.denied.map((d) => ({ scope: d.scope, reason: d.reason })),
  };
}

export function sayPayload(x: Say): Record<string, unknown> {
  return { text: x.text, lang: x.lang };
}

export function segmentPayload(x: Segment): Record<string, unknown> {
  return {
    digits: x.digits,
    kind: x.kind,
    frames: x.frames.map((f) => [...f]),
    frame_ms: x.frame_ms,
  };
}

export function displayPayload(x: Display): Record<string, unknown> {
  return { width: x.width, height: x.height, bitmap: x.bitmap };
}

export function replyPayload(r: CommandReply): Record<string, unknown> {
  if (isTokenReply(r)) return tokenPayload(r);
  const o: Record<string, unknown> = { ok: r.ok };
  if (r.error) o.error = { code: r.error.code, message: r.error.message };
  return o;
}

// ── incoming ─────────────────────────────────────────────────────────────────────────────────

type OptionType = "text" | "bool" | "uint";

/**
 * The options each command knows. Unknown keys are ignored (payloads may gain keys over time);
 * a known key of the wrong type is refused.
 */
export const COMMAND_OPTIONS: Readonly<Record<CommandName, Readonly<Record<string, OptionType>>>> =
  {
    /** `lang`: the language the owner may use for this pairing's prompts (BCP 47). */
    pair: { lang: "text" },
    logout: {},
    token: {},
    /** `reason`: why the token is to be refreshed (REFRESH_REASONS; other text is `rejected`). */
    refresh: { reason: "text" },
  };

const MAX_OPTION_TEXT = 64;

export type ParsedCommand =
  | { ok: true; options: CommandOptions }
  | { ok: false; error: Problem };

/**
 * Checks one command payload. An empty payload is `{}`. Never throws.
 */
export function parseCommand(name: CommandName, bytes: Uint8Array): ParsedCommand {
  const bad = (code: string, message: string): ParsedCommand => ({
    ok: false,
    error: { code, message },
  });
  if (bytes.length > MAX_COMMAND_BYTES) {
    return bad(
      BusCode.TOO_LARGE,
      `Command ${name} is ${bytes.length} bytes, more than ${MAX_COMMAND_BYTES}`,
    );
  }
  if (bytes.length === 0) return { ok: true, options: {} };
  const shape = checkPlainCbor(bytes);
  if (shape !== null) return bad(shape.code, `Cannot read command ${name}: ${shape.message}`);
  let value: unknown;
  try {
    value = decodeCbor(bytes, `command ${name}`);
  } catch (e) {
    return bad(BusCode.MALFORMED, e instanceof Error ? e.message : `Cannot decode command ${name}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return bad(BusCode.BAD_REQUEST, `Command ${name} must be a CBOR map`);
  }
  const spec = COMMAND_OPTIONS[name];
  const options: CommandOptions = {};
  for (const [key, type] of Object.entries(spec)) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const v = (value as Record<string, unknown>)[key];
    const fits = type === "text"
      ? typeof v === "string" && v.length <= MAX_OPTION_TEXT
      : type === "bool"
      ? typeof v === "boolean"
      : typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
    if (!fits) {
      const what = type === "text"
        ? `a text string of at most ${MAX_OPTION_TEXT} characters`
        : type === "bool"
        ? "a boolean"
        : "an unsigned integer";
      return bad(BusCode.BAD_REQUEST, `Command ${name} option "${key}" must be ${what}`);
    }
    options[key] = v;
  }
  return { ok: true, options };
}

/**
 * Walks one CBOR item without building it: null when it is exactly one well-formed item of plain
 * types (maps with text keys, no tags, bounded depth), else why not. cbor-x would turn an integer
 * key into a text key and a tag into a Date, so the shape is checked on the bytes.
 */
export function checkPlainCbor(bytes: Uint8Array): Problem | null {
  let pos = 0;
  const malformed = (m: string): Problem => ({ code: BusCode.MALFORMED, message: m });
  const shape = (m: string): Problem => ({ code: BusCode.BAD_REQUEST, message: m });

  /**
   * Reads the head at `pos`: [major type, argument (null when indefinite), additional info].
   */
  const head = (): [number, number | null, number] | Problem => {
    if (pos >= bytes.length) return malformed("unexpected end of data");
    const ib = bytes[pos++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    if (info < 24) return [major, info, info];
    if (info === 31) {
      if (major === 0 || major === 1 || major === 6) return malformed("invalid indefinite length");
      return [major, null, info];
    }
    if (info > 27) return malformed(`reserved additional information ${info}`);
    const n = 1 << (info - 24);
    if (pos + n > bytes.length) return malformed("unexpected end of data");
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[pos++]!;
    return [major, v, info];
  };

  const item = (depth: number, isKey: boolean): Problem | null => {
    if (depth > MAX_COMMAND_DEPTH) return shape(`nested deeper than ${MAX_COMMAND_DEPTH}`);
    const h = head();
    if (!Array.isArray(h)) return h;
    const [major, arg, info] = h;
    if (isKey && major !== 3) return shape("a map key is not a text string");
    switch (major) {
      case 0:
      case 1:
        return null;
      case 2:
      case 3: {
        if (arg === null) {
          for (;;) {
            if (pos >= bytes.length) return malformed("unexpected end of data");
            if (bytes[pos] === 0xff) {
              pos++;
              return null;
            }
            const c = head();
            if (!Array.isArray(c)) return c;
            if (c[0] !== major || c[1] === null) return malformed("bad indefinite string chunk");
            if (pos + c[1] > bytes.length) return malformed("unexpected end of data");
            pos += c[1];
          }
        }
        if (pos + arg > bytes.length) return malformed("unexpected end of data");
        if (major === 3) {
          try {
            new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(pos, pos + arg));
          } catch {
            return malformed("a text string is not UTF-8");
          }
        }
        pos += arg;
        return null;
      }
      case 4:
      case 5: {
        const per = major === 5 ? 2 : 1;
        if (arg === null) {
          for (;;) {
            if (pos >= bytes.length) return malformed("unexpected end of data");
            if (bytes[pos] === 0xff) {
              pos++;
              return null;
            }
            for (let k = 0; k < per; k++) {
              const e = item(depth + 1, major === 5 && k === 0);
              if (e) return e;
            }
          }
        }
        if (arg * per > bytes.length - pos) return malformed("a count beyond the data");
        for (let i = 0; i < arg; i++) {
          for (let k = 0; k < per; k++) {
            const e = item(depth + 1, major === 5 && k === 0);
            if (e) return e;
          }
        }
        return null;
      }
      case 6:
        return shape("tags are not plain CBOR");
      default:
        // major 7: false, true, null and floats; undefined and other simple values are not plain
        if (arg === null) return malformed("unexpected break");
        if (info >= 25 || (info >= 20 && info <= 22)) return null;
        return shape(`simple value ${arg} is not plain CBOR`);
    }
  };

  const first = bytes[0];
  const e = item(0, false);
  if (e) return e;
  if (pos !== bytes.length) return malformed("more than one item");
  if (first !== undefined && first >> 5 !== 5) return shape("not a map");
  return null;
}
