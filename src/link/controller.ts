/**
 * The link controller: linkd's account link as a state machine over the sealed store and an
 * authorization server. It knows nothing of MQTT or screens: it reports through a listener
 * (state, pairing code, access token, capabilities) and takes commands (pair, logout, token).
 *
 * - Boot: a sealed, valid token is served without touching the network; an expired one is
 *   refreshed; none starts the code-pair flow.
 * - Pairing: the server's interval is followed, never faster; slow_down adds 5 s for good; an
 *   expired code is renewed a bounded number of times, then linkd waits, unlinked, for pair().
 * - Scopes: a scope the server refuses is found out (one probe per scope), remembered, and the
 *   link made with what is granted (or the fallback scopes); refused scopes are looked at again
 *   on a schedule and on pair().
 * - Refresh: ahead of expiry; the new refresh token is sealed in flash before the new access
 *   token is announced; network failures back off (auth/backoff.ts) and never unlink;
 *   invalid_grant (revoked, deregistered) wipes the tokens and waits, unlinked, for pair().
 * - Every deadline is on the monotonic clock; the wall clock only stamps `*_at` fields.
 */
import { Backoff } from "../auth/backoff.ts";
import { processCodePairResponse, requestCodePair } from "../auth/codepair.ts";
import { DIALECTS, type DialectSpec } from "../auth/dialect.ts";
import {
  isRetryable,
  isScopeRefusal,
  OAuthError,
  ProtocolError,
  TransportError,
} from "../auth/errors.ts";
import { BUILD_TIME_FLOOR } from "../auth/http.ts";
import { processTokenResponse, requestDeviceToken, requestRefresh } from "../auth/token.ts";
import type { CodePair, DeviceIdentity, Fetch, TokenSet } from "../auth/types.ts";
import type { Clock } from "../clock.ts";
import type { AuthConfig } from "../config.ts";
import { isLinkdError } from "../errors.ts";
import { RecordType, type Vault } from "../store/vault.ts";
import { type CancelTimer, startTimer } from "../timers.ts";
import { decodeTokenRecord, encodeTokenRecord, type TokenRecord } from "../tokens/token_record.ts";
import {
  type Capabilities,
  capabilities,
  decodeScopeBook,
  EMPTY_BOOK,
  enabled,
  encodeScopeBook,
  linked,
  refuse,
  type ScopeBook,
  scopesToAsk,
} from "./scope_book.ts";

export type LinkStateName =
  | "unprovisioned"
  | "unlinked"
  | "pairing"
  | "linked"
  | "error"
  | "offline";

export interface LinkProblem {
  code: string;
  message: string;
}

/** The `state` payload of CONTRACT.md section 4. */
export interface LinkState {
  state: LinkStateName;
  /** Wall-clock ms when this state began. */
  since: number;
  scopes: string[];
  error?: LinkProblem;
}

/** The `pairing` payload. */
export interface PairingInfo {
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_at: number;
  expires_in: number;
  interval: number;
}

/** The `token` payload. */
export interface AccessToken {
  access_token: string;
  token_type: string;
  scopes: string[];
  expires_at: number;
  expires_in: number;
}

export interface LinkListener {
  state?(s: LinkState): void;
  /** A code to show, or null when pairing ends. */
  pairing?(p: PairingInfo | null): void;
  /** A fresh access token: on link and after each refresh. */
  token?(t: AccessToken): void;
  capabilities?(c: Capabilities): void;
}

export interface LinkOptions {
  vault: Vault;
  identity: DeviceIdentity;
  auth: Pick<AuthConfig, "dialect" | "codepairUrl" | "tokenUrl" | "scopes" | "fallbackScopes">;
  fetch: Fetch;
  clock: Clock;
  /** Uniform [0, 1) for backoff jitter. */
  random: () => number;
  listener?: LinkListener;
  /** Accept-Language of code-pair requests. */
  lang?: string;
  /** Request timeout (default 60 s, as the Alexa SDK), shortened to a token's remaining life. */
  requestTimeoutMs?: number;
  /** Fresh codes fetched automatically after one expires (default 2), then wait for pair(). */
  maxCodeRenewals?: number;
  /** How often refused scopes are looked at again while linked (default 24 h). */
  scopeRecheckMs?: number;
  /** How long before expiry to refresh (default 10 min, at most a quarter of the lifetime). */
  refreshLeadMs?: number;
  /** Real milliseconds a refresh in flight may still take after a cancel (default 5 s). */
  abortGraceMs?: number;
}

const MIN_TIMEOUT_MS = 5_000;
/** A wall-clock jump this large (NTP setting an unset clock) ends a clock_unset wait at once. */
const CLOCK_JUMP_MS = 60_000;
const CLOCK_POLL_MS = 5_000;

class NoScopeError extends Error {
  constructor() {
    super("The server refused every scope asked for, and the fallback scopes too");
  }
}

function isAbort(e: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (e instanceof TransportError && e.kind === "aborted");
}

/** A failure as the `error` of a state: a stable code and a message without secrets. */
export function describe(e: unknown): LinkProblem {
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
    return { code: "server_error", message: e.message.slice(0, 200) };
  }
  if (e instanceof NoScopeError) return { code: "no_scope", message: e.message };
  if (isLinkdError(e)) return { code: "store", message: e.message };
  return { code: "internal", message: `Unexpected ${e instanceof Error ? e.name : "failure"}` };
}

export class LinkController {
  readonly #o:
    & Required<Omit<LinkOptions, "listener" | "lang">>
    & Pick<LinkOptions, "listener" | "lang">;
  readonly #dialect: DialectSpec;
  #state: LinkState;
  #tokens: TokenRecord | null = null;
  /** Monotonic deadline of the access token, or null when unknown (clock unset at boot). */
  #deadline: number | null = null;
  #book: ScopeBook = EMPTY_BOOK;
  #granted: string[] = [];
  #activity: AbortController | null = null;
  #task: Promise<void> = Promise.resolve();
  #stopped = false;
  #generation = 0;

  constructor(options: LinkOptions) {
    this.#o = {
      requestTimeoutMs: 60_000,
      maxCodeRenewals: 2,
      scopeRecheckMs: 24 * 3600_000,
      refreshLeadMs: 600_000,
      abortGraceMs: 5_000,
      ...options,
    };
    this.#dialect = DIALECTS[options.auth.dialect];
    this.#state = { state: "unlinked", since: options.clock.now(), scopes: [] };
  }

  get state(): LinkState {
    return structuredClone(this.#state);
  }

  get capabilities(): Capabilities {
    return capabilities(this.#o.auth.scopes, this.#granted, this.#book);
  }

  /** The access token while it is valid (for cmd/token), else null. */
  currentToken(): AccessToken | null {
    if (!this.#tokens || this.#deadline === null) return null;
    const left = this.#deadline - this.#o.clock.monotonic();
    if (left <= 0) return null;
    return {
      access_token: this.#tokens.access_token,
      token_type: this.#tokens.token_type,
      scopes: [...this.#tokens.scopes],
      expires_at: this.#o.clock.now() + left,
      expires_in: Math.floor(left / 1000),
    };
  }

  /** Boot: from the sealed store to linked (serving, refreshing) or pairing. */
  start(): Promise<void> {
    this.#book = this.#loadBook();
    this.#tokens = this.#loadTokens();
    if (this.#tokens) {
      this.#granted = [...this.#tokens.scopes];
      const left = this.#wallRemaining(this.#tokens);
      this.#deadline = left === null ? null : this.#o.clock.monotonic() + left;
      this.#setState("linked");
      // The token before the capabilities: at boot it is what the audio pipeline waits for.
      const t = this.currentToken();
      if (t) this.#o.listener?.token?.(t);
      this.#emitCapabilities();
      return this.#begin((signal) => this.#whileLinked(signal));
    }
    this.#emitCapabilities();
    return this.#begin((signal) => this.#pairThenServe(signal, false));
  }

  /** cmd/pair: (re)starts pairing and looks at refused scopes again. */
  pair(): Promise<void> {
    return this.#begin((signal) => this.#pairThenServe(signal, true));
  }

  /** cmd/logout: cancels at once, forgets the tokens in flash, waits for pair(). */
  async logout(): Promise<void> {
    this.#generation++; // a pair() still waiting to start gives way
    await this.#cancel();
    this.#o.listener?.pairing?.(null);
    this.#forgetTokens();
    this.#setState("unlinked");
    this.#emitCapabilities();
  }

  /** Shutdown: cancels whatever runs (a poll, a refresh, a wait) at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#generation++;
    await this.#cancel();
  }

  /** Resolves when the current activity ends (tests). */
  idle(): Promise<void> {
    return this.#task;
  }

  // ── activities ───────────────────────────────────────────────────────────────────────────

  async #cancel(): Promise<void> {
    this.#activity?.abort();
    this.#activity = null;
    await this.#task;
  }

  async #begin(run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    // Calls may overlap (two cmd/pair in one tick): only the newest starts its activity.
    const generation = ++this.#generation;
    await this.#cancel();
    if (this.#stopped || generation !== this.#generation) return;
    const ac = new AbortController();
    this.#activity = ac;
    this.#task = run(ac.signal).catch((e) => {
      if (isAbort(e, ac.signal)) return;
      this.#setState("error", describe(e));
    });
  }

  /** Pairs; once linked, or when a re-pair fails but the old link still holds, serves it. */
  async #pairThenServe(signal: AbortSignal, recheck: boolean): Promise<void> {
    const ok = await this.#pair(signal, recheck);
    if (!ok && !this.#tokens) return;
    if (!ok) this.#setState("linked", this.#state.error);
    await this.#whileLinked(signal);
  }

  /** Refreshes and looks at refused scopes while linked; both end when the link does. */
  async #whileLinked(signal: AbortSignal): Promise<void> {
    const linkGone = new AbortController();
    const both = AbortSignal.any([signal, linkGone.signal]);
    const recheck = this.#recheckLoop(both).catch((e) => {
      if (!both.aborted) throw e;
    });
    try {
      await this.#refreshLoop(signal);
    } finally {
      linkGone.abort();
      await recheck;
    }
  }

  // ── pairing ──────────────────────────────────────────────────────────────────────────────

  /**
   * Runs the code-pair flow; true once linked. Tokens already held stay in flash until new ones
   * replace them, so a re-pair that fails leaves the old link working.
   */
  async #pair(signal: AbortSignal, recheck: boolean): Promise<boolean> {
    let renewals = 0;
    for (;;) {
      const got = await this.#obtainCode(signal, recheck);
      if (!got) return false;
      recheck = false;
      const outcome = await this.#poll(got.pair, got.asked, signal);
      if (outcome === "linked") return true;
      this.#o.listener?.pairing?.(null);
      if (outcome === "expired" && renewals++ < this.#o.maxCodeRenewals) continue;
      const after = this.#tokens ? "linked" : "unlinked";
      if (outcome === "expired") {
        this.#setState(after, {
          code: "code_expired",
          message: "The code expired before anyone entered it; ask to pair again",
        });
      } else if (outcome === "denied") {
        this.#setState(after, { code: "access_denied", message: "The user declined the link" });
      }
      return false;
    }
  }

  /** A code pair, retrying network failures; null when pairing cannot go on (state says why). */
  async #obtainCode(
    signal: AbortSignal,
    recheck: boolean,
  ): Promise<{ pair: CodePair; asked: string[] } | null> {
    const backoff = new Backoff(this.#o.random);
    for (;;) {
      try {
        return await this.#negotiate(signal, recheck);
      } catch (e) {
        if (isAbort(e, signal)) throw e;
        const problem = describe(e);
        this.#setState("error", problem);
        // A refusal is final; a server that is busy (server_error, temporarily_unavailable,
        // 429) is retried like a network failure.
        if ((e instanceof OAuthError && !isRetryable(e)) || e instanceof NoScopeError) return null;
        await this.#waitRetry(backoff.next(), problem.code === "clock_unset", signal);
      }
    }
  }

  /** Asks for the wanted scopes; on a scope refusal finds out which, then asks for the rest. */
  async #negotiate(
    signal: AbortSignal,
    recheck: boolean,
  ): Promise<{ pair: CodePair; asked: string[] }> {
    const wanted = this.#o.auth.scopes;
    let ask = scopesToAsk(wanted, this.#book, recheck);
    if (ask.length === 0) ask = scopesToAsk(this.#o.auth.fallbackScopes, this.#book, false);
    if (ask.length === 0) throw new NoScopeError();
    let refusal: OAuthError;
    try {
      return { pair: await this.#codePair(ask, signal), asked: ask };
    } catch (e) {
      if (!isScopeRefusal(e)) throw e;
      refusal = e as OAuthError;
    }
    if (ask.length === 1) this.#refuse(ask[0]!, refusal);
    else {
      for (const s of ask) { // one probe per scope
        try {
          await this.#codePair([s], signal);
          if (this.#book.refused[s]) this.#book = enabled(this.#book, s);
        } catch (e) {
          if (!isScopeRefusal(e)) throw e;
          this.#refuse(s, e as OAuthError);
        }
      }
    }
    this.#saveBook();
    this.#emitCapabilities();
    ask = scopesToAsk(wanted, this.#book, false);
    if (ask.length === 0) ask = scopesToAsk(this.#o.auth.fallbackScopes, this.#book, false);
    if (ask.length === 0) throw new NoScopeError();
    try {
      return { pair: await this.#codePair(ask, signal), asked: ask };
    } catch (e) {
      if (!isScopeRefusal(e)) throw e;
      for (const s of ask) this.#refuse(s, e as OAuthError);
      this.#saveBook();
      this.#emitCapabilities();
      throw new NoScopeError();
    }
  }

  async #codePair(scopes: readonly string[], signal: AbortSignal): Promise<CodePair> {
    const res = await requestCodePair({
      fetch: this.#o.fetch,
      clock: this.#o.clock,
      url: this.#o.auth.codepairUrl,
      dialect: this.#dialect,
      identity: this.#o.identity,
      scopes,
      timeoutMs: this.#o.requestTimeoutMs,
      signal,
      ...(this.#o.lang ? { lang: this.#o.lang } : {}),
    });
    return processCodePairResponse(this.#dialect, res);
  }

  #refuse(scope: string, e: OAuthError): void {
    const lwa = /unknown scope/i.test(e.errorDescription ?? "");
    this.#book = refuse(this.#book, scope, {
      reason: lwa ? "unknown_scope" : "invalid_scope",
      detail: e.errorDescription ?? e.error,
      at: this.#o.clock.now(),
    });
  }

  /** Polls for the user's approval at the server's pace. */
  async #poll(
    pair: CodePair,
    asked: string[],
    signal: AbortSignal,
  ): Promise<"linked" | "expired" | "denied" | "error"> {
    const clock = this.#o.clock;
    const codeDeadline = clock.monotonic() + pair.expiresIn * 1000;
    this.#o.listener?.pairing?.({
      user_code: pair.userCode,
      verification_uri: pair.verificationUri,
      ...(pair.verificationUriComplete
        ? { verification_uri_complete: pair.verificationUriComplete }
        : {}),
      expires_at: clock.now() + pair.expiresIn * 1000,
      expires_in: pair.expiresIn,
      interval: pair.interval,
    });
    this.#setState("pairing");
    let interval = pair.interval * 1000;
    let wait = interval;
    const backoff = new Backoff(this.#o.random);
    for (;;) {
      await clock.sleep(Math.min(wait, Math.max(0, codeDeadline - clock.monotonic())), signal);
      const left = codeDeadline - clock.monotonic();
      if (left <= 0) return "expired";
      try {
        const res = await requestDeviceToken({
          fetch: this.#o.fetch,
          clock,
          url: this.#o.auth.tokenUrl,
          dialect: this.#dialect,
          pair,
          clientId: this.#o.identity.clientId,
          timeoutMs: Math.max(MIN_TIMEOUT_MS, Math.min(this.#o.requestTimeoutMs, left)),
          signal,
        });
        const tokens = processTokenResponse(res, "device");
        this.#o.listener?.pairing?.(null);
        this.#linked(tokens, asked, null);
        return "linked";
      } catch (e) {
        if (isAbort(e, signal)) throw e;
        if (e instanceof OAuthError) {
          switch (e.error) {
            case "authorization_pending":
              wait = interval;
              backoff.reset();
              continue;
            case "slow_down":
              interval += 5000;
              wait = interval;
              continue;
            case "expired_token":
            case "invalid_grant":
              return "expired";
            case "access_denied":
              return "denied";
            default:
              if (isRetryable(e)) {
                wait = Math.max(interval, backoff.next());
                continue;
              }
              this.#o.listener?.pairing?.(null);
              this.#setState("error", describe(e));
              return "error";
          }
        }
        // A network failure or a server error: back off, but never poll faster than asked.
        wait = Math.max(interval, backoff.next());
      }
    }
  }

  // ── tokens ───────────────────────────────────────────────────────────────────────────────

  /** Seals the new tokens in flash, then announces them. */
  #linked(t: TokenSet, asked: readonly string[], previous: TokenRecord | null): void {
    const clock = this.#o.clock;
    const granted = t.scope !== undefined && t.scope.trim() !== ""
      ? t.scope.trim().split(/\s+/)
      : previous
      ? [...previous.scopes]
      : [...asked];
    const refreshToken = t.refreshToken ?? previous?.refresh_token;
    if (!refreshToken) {
      throw new ProtocolError("INVALID_FIELD", 'Token response field "refresh_token" is missing');
    }
    const now = clock.now();
    const record: TokenRecord = {
      access_token: t.accessToken,
      refresh_token: refreshToken,
      token_type: t.tokenType,
      scopes: granted,
      expires_in: t.expiresIn,
      obtained_at: now,
      expires_at: now + t.expiresIn * 1000,
      client_id: this.#o.identity.clientId,
    };
    this.#o.vault.put(RecordType.TOKENS, encodeTokenRecord(record)); // sealed before it is used
    this.#tokens = record;
    this.#deadline = clock.monotonic() + t.expiresIn * 1000;
    this.#granted = granted;
    if (!previous) {
      let book = linked(this.#book, granted);
      for (const s of asked) {
        if (!granted.includes(s)) {
          book = refuse(book, s, { reason: "not_granted", detail: "", at: now });
        }
      }
      this.#book = book;
      this.#saveBook();
    }
    this.#setState("linked");
    this.#emitCapabilities();
    const token = this.currentToken();
    if (token) this.#o.listener?.token?.(token);
  }

  #refreshLead(): number {
    const life = (this.#tokens?.expires_in ?? 3600) * 1000;
    return Math.min(this.#o.refreshLeadMs, Math.floor(life / 4));
  }

  async #refreshLoop(signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    const backoff = new Backoff(this.#o.random);
    for (;;) {
      if (this.#deadline !== null) {
        const wait = this.#deadline - this.#refreshLead() - clock.monotonic();
        if (wait > 0) await clock.sleep(wait, signal);
      }
      const previous = this.#tokens;
      if (!previous) return;
      try {
        const left = this.#deadline === null ? Infinity : this.#deadline - clock.monotonic();
        // The server may rotate the refresh token the moment it answers: a refresh in flight is
        // not cut off by shutdown or re-pairing at once, but given a grace to land and be sealed,
        // so the rotated token is never lost (a lost one unlinks the speaker later).
        const request = new AbortController();
        let grace: CancelTimer | undefined;
        const onAbort = () => (grace = startTimer(this.#o.abortGraceMs, () => request.abort()));
        signal.addEventListener("abort", onAbort, { once: true });
        let res;
        try {
          res = await requestRefresh({
            fetch: this.#o.fetch,
            clock,
            url: this.#o.auth.tokenUrl,
            dialect: this.#dialect,
            refreshToken: previous.refresh_token,
            clientId: this.#o.identity.clientId,
            timeoutMs: Math.max(MIN_TIMEOUT_MS, Math.min(this.#o.requestTimeoutMs, left)),
            signal: request.signal,
          });
        } finally {
          signal.removeEventListener("abort", onAbort);
          grace?.();
        }
        const refreshed = processTokenResponse(res, "refresh");
        // Sealed only while the record it replaces is still the current one (a logout or a new
        // link in the meantime wins).
        if (this.#tokens === previous) this.#linked(refreshed, previous.scopes, previous);
        if (signal.aborted) return;
        backoff.reset();
      } catch (e) {
        if (isAbort(e, signal)) throw e;
        if (e instanceof OAuthError && e.error === "invalid_grant") {
          // Revoked, expired, or the user deregistered the speaker: the link is gone.
          this.#forgetTokens();
          this.#setState("unlinked", {
            code: "invalid_grant",
            message: "The link was revoked or the speaker was deregistered; ask to pair again",
          });
          this.#emitCapabilities();
          return;
        }
        const problem = describe(e);
        // Still linked while a refresh token is held; the error says what is wrong.
        this.#setState("linked", problem);
        await this.#waitRetry(backoff.next(), problem.code === "clock_unset", signal);
      }
    }
  }

  /** While linked, looks at refused scopes again now and then: one probe per scope. */
  async #recheckLoop(signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.#o.clock.sleep(this.#o.scopeRecheckMs, signal);
      const refused = Object.keys(this.#book.refused).filter((s) =>
        this.#book.refused[s]!.reason !== "not_granted"
      );
      if (refused.length === 0) continue;
      let changed = false;
      for (const s of refused) {
        try {
          await this.#codePair([s], signal);
          this.#book = enabled(this.#book, s);
          changed = true;
        } catch (e) {
          if (isAbort(e, signal)) throw e;
          if (!isScopeRefusal(e)) break; // unreachable now: try again next time
        }
      }
      if (changed) {
        this.#saveBook();
        this.#emitCapabilities();
      }
    }
  }

  /** Waits `ms`; a clock_unset wait also ends as soon as the wall clock jumps (time was set). */
  async #waitRetry(ms: number, untilClockMoves: boolean, signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    if (!untilClockMoves) return clock.sleep(ms, signal);
    const offset = clock.now() - clock.monotonic();
    const end = clock.monotonic() + ms;
    while (clock.monotonic() < end) {
      await clock.sleep(Math.min(CLOCK_POLL_MS, end - clock.monotonic()), signal);
      if (Math.abs(clock.now() - clock.monotonic() - offset) > CLOCK_JUMP_MS) return;
    }
  }

  /** Milliseconds of access-token life by the wall clock, or null when the clock can't be trusted. */
  #wallRemaining(t: TokenRecord): number | null {
    const now = this.#o.clock.now();
    if (now < BUILD_TIME_FLOOR || t.obtained_at < BUILD_TIME_FLOOR || now < t.obtained_at) {
      return null;
    }
    return t.expires_at - now;
  }

  // ── the sealed store ─────────────────────────────────────────────────────────────────────

  #loadTokens(): TokenRecord | null {
    try {
      const bytes = this.#o.vault.get(RecordType.TOKENS);
      if (!bytes) return null;
      const t = decodeTokenRecord(bytes);
      if (t.client_id !== this.#o.identity.clientId) {
        this.#forgetTokens(); // tokens of another client id are stale
        return null;
      }
      return t;
    } catch {
      this.#forgetTokens(); // unreadable: pair again rather than keep a broken link
      return null;
    }
  }

  #forgetTokens(): void {
    this.#tokens = null;
    this.#deadline = null;
    this.#granted = [];
    if (this.#o.vault.store.get(RecordType.TOKENS)) this.#o.vault.delete(RecordType.TOKENS);
  }

  #loadBook(): ScopeBook {
    try {
      const bytes = this.#o.vault.get(RecordType.SCOPES);
      return bytes ? decodeScopeBook(bytes) : EMPTY_BOOK;
    } catch {
      return EMPTY_BOOK;
    }
  }

  #saveBook(): void {
    this.#o.vault.put(RecordType.SCOPES, encodeScopeBook(this.#book));
  }

  // ── reporting ────────────────────────────────────────────────────────────────────────────

  #setState(state: LinkStateName, error?: LinkProblem): void {
    const prev = this.#state;
    const same = prev.state === state && JSON.stringify(prev.error) === JSON.stringify(error) &&
      JSON.stringify(prev.scopes) === JSON.stringify(this.#granted);
    if (same) return;
    this.#state = {
      state,
      since: prev.state === state ? prev.since : this.#o.clock.now(),
      scopes: [...this.#granted],
      ...(error ? { error } : {}),
    };
    this.#o.listener?.state?.(this.state);
  }

  #emitCapabilities(): void {
    this.#o.listener?.capabilities?.(this.capabilities);
  }
}
