/**
 * The link controller: linkd's account link as a state machine over the sealed store and an
 * authorization server. It knows nothing of MQTT or screens: it reports through a listener
 * (state, pairing code, access token, capabilities: the shapes of ../contract.ts) and takes
 * commands (pair, logout, token).
 *
 * - Boot: a sealed, valid token is served without touching the network; an expired one is
 *   refreshed; none starts the code-pair flow.
 * - Pairing: the server's interval is followed, never faster; slow_down adds 5 s for good; a code
 *   that expired or that the server forgot (`invalid_code_pair`) is renewed a bounded number of
 *   times, then linkd waits, unlinked, for pair(); an error it does not know keeps the polling
 *   going until the code expires (as the Alexa SDK does), reported on the state.
 * - Scopes: the refused ones are found with the fewest requests and one code pair
 *   (scope_probe.ts), remembered with the time, and the link made with what is granted (or the
 *   fallback scopes); refused scopes are looked at again on a schedule kept across reboots, and
 *   on pair().
 * - Refresh: once soon after linking, then ahead of expiry, and at once when a resource server
 *   refused the token (refreshNow, at most once per 30 s); the new refresh token is sealed in
 *   flash before the new access token is announced; network failures back off
 *   (auth/backoff.ts) and never unlink; invalid_grant (revoked, deregistered) wipes the tokens
 *   and waits, unlinked, for pair(); a refused client (`client_rejected`) is final until pair().
 * - Account: with `profile:user_id` granted, the profile is read once per link and a keyed
 *   fingerprint of the account published, with the previous account's when it changed.
 * - Every deadline is on the monotonic clock; the wall clock only stamps `*_at` fields.
 */
import { Backoff } from "../auth/backoff.ts";
import { processCodePairResponse, requestCodePair } from "../auth/codepair.ts";
import { DIALECTS, type DialectSpec } from "../auth/dialect.ts";
import {
  isClientRejection,
  isRetryable,
  isScopeRefusal,
  OAuthError,
  ProtocolError,
  saysUnknownScope,
  TransportError,
} from "../auth/errors.ts";
import { BUILD_TIME_FLOOR } from "../auth/http.ts";
import {
  canReadProfile,
  processProfileResponse,
  profileUrlFor,
  requestProfile,
} from "../auth/profile.ts";
import { processTokenResponse, requestDeviceToken, requestRefresh } from "../auth/token.ts";
import type { CodePair, DeviceIdentity, Fetch, TokenSet } from "../auth/types.ts";
import type { Clock } from "../clock.ts";
import type { AuthConfig } from "../config.ts";
import {
  type AccessToken,
  type Capabilities,
  type LinkState,
  type LinkStateName,
  type PairingInfo,
  type Problem,
  REFRESH_COOLDOWN_MS,
} from "../contract.ts";
import { RecordType } from "../records/types.ts";
import type { Vault } from "../store/vault.ts";
import { type CancelTimer, startTimer } from "../timers.ts";
import { decodeTokenRecord, encodeTokenRecord, type TokenRecord } from "../records/token.ts";
import { accountAfterRead, accountInfo } from "./account.ts";
import {
  type AccountRecord,
  decodeAccountRecord,
  encodeAccountRecord,
} from "../records/account.ts";
import { clientRejected, NoScopeError, NOT_LINKED, problemOf } from "./problems.ts";
import { capabilities, enabled, linked, refuse, scopesToAsk } from "./scope_book.ts";
import {
  decodeScopeBook,
  EMPTY_BOOK,
  encodeScopeBook,
  type ScopeBook,
} from "../records/scope_book.ts";
import { ScopeProbe } from "./scope_probe.ts";

export { problemOf } from "./problems.ts";

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
  /**
   * How soon after a new link the first refresh goes (default 60 s): as the Alexa SDK does, so
   * a client the server will not refresh (`client_rejected`) is found in minutes, not an hour.
   */
  firstRefreshMs?: number;
  /** The profile endpoint (default: `/user/profile` on the token endpoint's host, as LWA). */
  profileUrl?: string;
}

const MIN_TIMEOUT_MS = 5_000;
/** A wall-clock jump this large (NTP setting an unset clock) ends a clock_unset wait at once. */
const CLOCK_JUMP_MS = 60_000;
const CLOCK_POLL_MS = 5_000;
/** Profile reads tried after a link before giving up until the next link or restart. */
const PROFILE_TRIES = 6;
/** A wall-clock change this large re-anchors a token's `expires_at`; smaller ones are jitter. */
const ANCHOR_SLACK_MS = 1_000;

type PollOutcome = "linked" | "expired" | "forgotten" | "denied" | "error";

function isAbort(e: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (e instanceof TransportError && e.kind === "aborted");
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s) => b.includes(s));
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
  /** The token's `expires_at`, fixed while the wall clock keeps its pace (integer ms). */
  #anchor: { expiresAt: number; offset: number } | null = null;
  #book: ScopeBook = EMPTY_BOOK;
  #granted: string[] = [];
  #account: AccountRecord | null = null;
  #activity: AbortController | null = null;
  #task: Promise<void> = Promise.resolve();
  #stopped = false;
  #generation = 0;
  // The refresh loop and cmd/refresh.
  /** Monotonic time of the first refresh after a new link, until it happened. */
  #firstRefreshAt: number | null = null;
  /** Monotonic time the last refresh request went out. */
  #lastRefreshAt: number | null = null;
  #refreshing = false;
  #serving = false;
  #forced = false;
  /** Aborted to wake the refresh loop from its wait (cmd/refresh). */
  #wake: AbortController | null = null;
  #waiters: ((p: Problem | null) => void)[] = [];
  /** Set when the server refused this client: no refresh until pair() or a restart. */
  #rejected: Problem | null = null;

  constructor(options: LinkOptions) {
    this.#o = {
      requestTimeoutMs: 60_000,
      maxCodeRenewals: 2,
      scopeRecheckMs: 24 * 3600_000,
      refreshLeadMs: 600_000,
      abortGraceMs: 5_000,
      firstRefreshMs: 60_000,
      profileUrl: profileUrlFor(options.auth.tokenUrl),
      ...options,
    };
    this.#dialect = DIALECTS[options.auth.dialect];
    this.#state = { state: "unlinked", since: Math.floor(options.clock.now()), scopes: [] };
  }

  get state(): LinkState {
    return structuredClone(this.#state);
  }

  get capabilities(): Capabilities {
    return capabilities(this.#o.auth.scopes, this.#granted, this.#book);
  }

  /** The access token while it is valid (for cmd/token), else null. Times are integers. */
  currentToken(): AccessToken | null {
    if (!this.#tokens || this.#deadline === null) return null;
    const clock = this.#o.clock;
    const mono = clock.monotonic();
    const left = this.#deadline - mono;
    if (left <= 0) return null;
    // expires_at is the same in every answer while the wall clock keeps its pace with the
    // monotonic one; a clock that was set (NTP) moves it once.
    const offset = clock.now() - mono;
    if (this.#anchor === null || Math.abs(offset - this.#anchor.offset) > ANCHOR_SLACK_MS) {
      this.#anchor = { expiresAt: Math.floor(this.#deadline + offset), offset };
    }
    return {
      access_token: this.#tokens.access_token,
      token_type: this.#tokens.token_type,
      scopes: [...this.#tokens.scopes],
      expires_at: this.#anchor.expiresAt,
      expires_in: Math.floor(left / 1000),
    };
  }

  /** Boot: from the sealed store to linked (serving, refreshing) or pairing. */
  start(): Promise<void> {
    this.#book = this.#loadBook();
    this.#account = this.#loadAccount();
    this.#tokens = this.#loadTokens();
    if (this.#tokens) {
      this.#granted = [...this.#tokens.scopes];
      const left = this.#wallRemaining(this.#tokens);
      this.#setDeadline(left === null ? null : this.#o.clock.monotonic() + left);
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

  /**
   * cmd/refresh: a resource server (AVS, Music) refused the current access token. Refreshes at
   * once (joining a refresh already in flight), at most one refresh per 30 s however often it
   * is asked. Resolves with null once refreshed, or with why not: `not_linked`, `pairing`,
   * `rate_limited`, `client_rejected`, `invalid_grant` (the tokens were wiped, state
   * `unlinked`), or a transport/server problem (`network`, `timeout`, `clock_unset`,
   * `server_error`, ...) after which the refresh loop keeps its backoff.
   */
  refreshNow(_reason?: string): Promise<Problem | null> {
    if (!this.#tokens) return Promise.resolve(NOT_LINKED);
    if (this.#rejected) return Promise.resolve(this.#rejected);
    if (!this.#serving) {
      return Promise.resolve({
        code: "pairing",
        message: "Pairing is under way: the token is refreshed once it ends",
      });
    }
    if (!this.#refreshing && !this.#forced && this.#lastRefreshAt !== null) {
      const since = this.#o.clock.monotonic() - this.#lastRefreshAt;
      if (since < REFRESH_COOLDOWN_MS) {
        return Promise.resolve({
          code: "rate_limited",
          message: `Refreshed ${Math.floor(since / 1000)} s ago: at most one refresh per ${
            REFRESH_COOLDOWN_MS / 1000
          } s`,
        });
      }
    }
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      if (!this.#refreshing) {
        this.#forced = true;
        this.#wake?.abort();
      }
    });
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
      this.#setState("error", problemOf(e));
    });
  }

  /** Pairs; once linked, or when a re-pair fails but the old link still holds, serves it. */
  async #pairThenServe(signal: AbortSignal, recheck: boolean): Promise<void> {
    this.#rejected = null; // the user asked again: the server may have been fixed
    const ok = await this.#pair(signal, recheck);
    if (!ok && !this.#tokens) return;
    if (!ok) this.#setState("linked", this.#state.error);
    await this.#whileLinked(signal);
  }

  /** Refreshes, reads the account and looks at refused scopes while linked; all end with it. */
  async #whileLinked(signal: AbortSignal): Promise<void> {
    const linkGone = new AbortController();
    const both = AbortSignal.any([signal, linkGone.signal]);
    const quiet = (e: unknown) => {
      if (!both.aborted) throw e;
    };
    const recheck = this.#recheckLoop(both).catch(quiet);
    const account = this.#readAccount(both).catch(quiet);
    try {
      await this.#refreshLoop(signal);
    } finally {
      linkGone.abort();
      await recheck;
      await account;
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
      const renew = outcome === "expired" || outcome === "forgotten";
      if (renew && renewals++ < this.#o.maxCodeRenewals) continue;
      const after = this.#tokens ? "linked" : "unlinked";
      if (outcome === "expired") {
        this.#setState(after, {
          code: "code_expired",
          message: "The code expired before anyone entered it; ask to pair again",
        });
      } else if (outcome === "forgotten") {
        this.#setState(after, {
          code: "code_expired",
          message: "The server forgot the code (invalid_code_pair) too often; ask to pair again",
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
        const problem = problemOf(e);
        this.#setState("error", problem);
        // A refusal is final; a server that is busy (server_error, servererror,
        // temporarily_unavailable, 429) or an answer linkd cannot read is retried, backing off.
        if ((e instanceof OAuthError && !isRetryable(e)) || e instanceof NoScopeError) return null;
        await this.#waitRetry(backoff.next(), problem.code === "clock_unset", signal);
      }
    }
  }

  /**
   * A code pair for the wanted scopes the server grants: the refused ones are found with the
   * fewest requests, and the code pair of the last accepted set is the one shown
   * (scope_probe.ts). When none of them is granted, the fallback scopes.
   */
  async #negotiate(
    signal: AbortSignal,
    recheck: boolean,
  ): Promise<{ pair: CodePair; asked: string[] }> {
    const first = scopesToAsk(this.#o.auth.scopes, this.#book, recheck);
    const refusedSets: string[][] = [];
    if (first.length > 0) {
      const got = await this.#probe(first, refusedSets, signal);
      if (got) return got;
    }
    const fallback = scopesToAsk(this.#o.auth.fallbackScopes, this.#book, false);
    if (fallback.length === 0 || refusedSets.some((s) => sameSet(s, fallback))) {
      throw new NoScopeError();
    }
    const got = await this.#probe(fallback, refusedSets, signal);
    if (got) return got;
    throw new NoScopeError();
  }

  /** Probes `wanted`; records each finding in the scope book, even when a request fails. */
  async #probe(
    wanted: readonly string[],
    refusedSets: string[][],
    signal: AbortSignal,
  ): Promise<{ pair: CodePair; asked: string[] } | null> {
    const fallback = this.#o.auth.fallbackScopes;
    const probe = new ScopeProbe<OAuthError>(
      wanted,
      (s, i) => (this.#book.refused[s] ? 1000 : 0) + (fallback.includes(s) ? 0 : 100) + i,
    );
    let pair: CodePair | null = null;
    try {
      for (let set = probe.next(); set !== null; set = probe.next()) {
        try {
          pair = await this.#codePair(set, signal);
          probe.accept(set);
        } catch (e) {
          if (!isScopeRefusal(e)) throw e;
          refusedSets.push([...set]);
          probe.refuse(set, e);
        }
      }
    } finally {
      const { granted, refused } = probe.result();
      let book = this.#book;
      for (const [s, e] of refused) book = this.#refused(book, s, e);
      for (const s of granted) if (book.refused[s]) book = enabled(book, s);
      if (book !== this.#book) {
        this.#book = book;
        this.#saveBook();
        this.#emitCapabilities();
      }
    }
    const granted = probe.result().granted;
    return pair !== null && granted.length > 0 ? { pair, asked: [...granted] } : null;
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

  /** The book with `scope` refused now, for the reason the refusal gives. */
  #refused(book: ScopeBook, scope: string, e: OAuthError): ScopeBook {
    return refuse(book, scope, {
      reason: saysUnknownScope(e) ? "unknown_scope" : "invalid_scope",
      detail: e.errorDescription ?? e.error,
      at: Math.floor(this.#o.clock.now()),
    });
  }

  /** Polls for the user's approval at the server's pace. */
  async #poll(pair: CodePair, asked: string[], signal: AbortSignal): Promise<PollOutcome> {
    const clock = this.#o.clock;
    const codeDeadline = clock.monotonic() + pair.expiresIn * 1000;
    this.#o.listener?.pairing?.({
      user_code: pair.userCode,
      verification_uri: pair.verificationUri,
      ...(pair.verificationUriComplete
        ? { verification_uri_complete: pair.verificationUriComplete }
        : {}),
      expires_at: Math.floor(clock.now() + pair.expiresIn * 1000),
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
      let res;
      try {
        res = await requestDeviceToken({
          fetch: this.#o.fetch,
          clock,
          url: this.#o.auth.tokenUrl,
          dialect: this.#dialect,
          pair,
          clientId: this.#o.identity.clientId,
          timeoutMs: Math.max(MIN_TIMEOUT_MS, Math.min(this.#o.requestTimeoutMs, left)),
          signal,
        });
      } catch (e) {
        if (isAbort(e, signal)) throw e;
        // No answer: back off, but never poll faster than asked.
        this.#setState("pairing", problemOf(e));
        wait = Math.max(interval, backoff.next());
        continue;
      }
      let tokens: TokenSet;
      try {
        tokens = processTokenResponse(res, "device");
      } catch (e) {
        if (res.status === 200) {
          // The server redeemed the code with an answer linkd cannot use: asking again only
          // gets invalid_grant. Final, and said so.
          this.#o.listener?.pairing?.(null);
          this.#setState("error", problemOf(e));
          return "error";
        }
        const next = this.#pollError(e);
        if (next === "again") {
          wait = interval;
          backoff.reset();
        } else if (next === "slower") {
          interval += 5000;
          wait = interval;
        } else if (next === "back_off") wait = Math.max(interval, backoff.next());
        else return next;
        continue;
      }
      this.#o.listener?.pairing?.(null);
      this.#linked(tokens, asked, null);
      return "linked";
    }
  }

  /**
   * What a refused poll means: an outcome that ends this code, or how to go on: `again` (poll
   * at the interval), `slower` (slow_down: 5 s more for good), or `back_off` (a busy server or
   * an answer linkd cannot read: back off, never faster than the interval). Unknown OAuth errors
   * go on at the interval until the code expires, as the Alexa SDK does; the state says what
   * the server answered.
   */
  #pollError(e: unknown): PollOutcome | "again" | "slower" | "back_off" {
    if (e instanceof OAuthError) {
      switch (e.error) {
        case "authorization_pending":
          this.#setState("pairing");
          return "again";
        case "slow_down":
          return "slower";
        case "expired_token":
          return "expired";
        case "invalid_code_pair": // LWA forgot the code pair: a new one (the Alexa SDKs do)
        case "invalid_grant":
          return "forgotten";
        case "access_denied":
          return "denied";
      }
      if (isClientRejection(e)) {
        this.#o.listener?.pairing?.(null);
        this.#setState("error", clientRejected(e));
        return "error";
      }
    }
    this.#setState("pairing", problemOf(e));
    return isRetryable(e) || !(e instanceof OAuthError) ? "back_off" : "again";
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
    const now = Math.floor(clock.now());
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
    this.#setDeadline(clock.monotonic() + t.expiresIn * 1000);
    this.#granted = granted;
    if (!previous) {
      // A new link: refresh soon to learn early whether the server will refresh this client;
      // the account is read again (it may be another person's).
      this.#firstRefreshAt = clock.monotonic() + this.#o.firstRefreshMs;
      this.#accountNotCurrent();
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

  #setDeadline(deadline: number | null): void {
    this.#deadline = deadline;
    this.#anchor = null;
  }

  #refreshLead(): number {
    const life = (this.#tokens?.expires_in ?? 3600) * 1000;
    return Math.min(this.#o.refreshLeadMs, Math.floor(life / 4));
  }

  /** When the next refresh is due (monotonic), or null for at once (the token's life unknown). */
  #refreshDue(): number | null {
    if (this.#deadline === null) return null;
    const due = this.#deadline - this.#refreshLead();
    return this.#firstRefreshAt === null ? due : Math.min(due, this.#firstRefreshAt);
  }

  async #refreshLoop(signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    const backoff = new Backoff(this.#o.random);
    let retry: { at: number; untilClockMoves: boolean } | null = null;
    this.#serving = true;
    try {
      for (;;) {
        if (!this.#forced) {
          const at = retry?.at ?? this.#refreshDue();
          const wait = at === null ? 0 : at - clock.monotonic();
          if (wait > 0) await this.#wakeableWait(wait, retry?.untilClockMoves ?? false, signal);
        }
        this.#forced = false;
        const previous = this.#tokens;
        if (!previous) return;
        const problem = await this.#refreshOnce(previous, signal);
        for (const w of this.#waiters.splice(0)) w(problem);
        if (problem === null) {
          if (signal.aborted) return;
          backoff.reset();
          retry = null;
          continue;
        }
        if (!this.#tokens) return; // invalid_grant: unlinked
        if (this.#rejected) {
          // Final: the access token serves until it expires, then the state says so.
          const left = this.#deadline === null ? 0 : this.#deadline - clock.monotonic();
          if (left > 0) await clock.sleep(left, signal);
          this.#setState("error", this.#rejected);
          return;
        }
        retry = {
          at: clock.monotonic() + backoff.next(),
          untilClockMoves: problem.code === "clock_unset",
        };
      }
    } finally {
      this.#serving = false;
      this.#forced = false;
      for (const w of this.#waiters.splice(0)) w(NOT_LINKED);
    }
  }

  /** Waits `ms` (see waitRetry); cmd/refresh cuts the wait short. */
  async #wakeableWait(ms: number, untilClockMoves: boolean, signal: AbortSignal): Promise<void> {
    const wake = new AbortController();
    this.#wake = wake;
    try {
      await this.#waitRetry(ms, untilClockMoves, AbortSignal.any([signal, wake.signal]));
    } catch (e) {
      if (signal.aborted) throw e; // shutdown or re-pair; a wake-up just goes on
    } finally {
      this.#wake = null;
    }
  }

  /**
   * One refresh request; seals and announces the new tokens. Resolves with null, or with the
   * problem, after acting on it: invalid_grant unlinks, a refused client is final
   * (`client_rejected`), anything else leaves the link as it is for the loop to retry.
   */
  async #refreshOnce(previous: TokenRecord, signal: AbortSignal): Promise<Problem | null> {
    const clock = this.#o.clock;
    this.#refreshing = true;
    this.#lastRefreshAt = clock.monotonic();
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
      this.#firstRefreshAt = null;
      // Sealed only while the record it replaces is still the current one (a logout or a new
      // link in the meantime wins).
      if (this.#tokens === previous) this.#linked(refreshed, previous.scopes, previous);
      return null;
    } catch (e) {
      if (isAbort(e, signal)) throw e;
      if (e instanceof OAuthError && e.error === "invalid_grant") {
        // Revoked, expired, or the user deregistered the speaker: the link is gone.
        const problem = {
          code: "invalid_grant",
          message: "The link was revoked or the speaker was deregistered; ask to pair again",
        };
        this.#forgetTokens();
        this.#setState("unlinked", problem);
        this.#emitCapabilities();
        return problem;
      }
      if (isClientRejection(e)) {
        this.#rejected = clientRejected(e);
        this.#setState("linked", this.#rejected);
        return this.#rejected;
      }
      const problem = problemOf(e);
      // Still linked while a refresh token is held; the error says what is wrong.
      this.#setState("linked", problem);
      return problem;
    } finally {
      this.#refreshing = false;
    }
  }

  // ── account ──────────────────────────────────────────────────────────────────────────────

  /**
   * Reads the profile once per link when `profile:user_id` (or `profile`) is granted, and keeps
   * a keyed fingerprint of the account: the state then names it, and the previous account when
   * it changed, so the audio pipeline can wipe the previous owner's data. Transient failures are
   * retried a few times; a 403 (the scope is not really granted) ends it.
   */
  async #readAccount(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#o.random);
    for (let i = 0; i < PROFILE_TRIES; i++) {
      const tokens = this.#tokens;
      if (!tokens || !canReadProfile(tokens.scopes) || this.#account?.current) return;
      try {
        const res = await requestProfile({
          fetch: this.#o.fetch,
          clock: this.#o.clock,
          url: this.#o.profileUrl,
          accessToken: tokens.access_token,
          timeoutMs: this.#o.requestTimeoutMs,
          signal,
        });
        const userId = processProfileResponse(res);
        const fingerprint = this.#o.vault.fingerprint("account", new TextEncoder().encode(userId));
        this.#saveAccount(accountAfterRead(this.#account, fingerprint));
        this.#setState(this.#state.state, this.#state.error);
        return;
      } catch (e) {
        if (isAbort(e, signal)) throw e;
        if (e instanceof OAuthError && e.status === 403) return;
        // 401: the token may have been refreshed meanwhile; the next try takes the new one.
        await this.#o.clock.sleep(Math.max(1000, backoff.next()), signal);
      }
    }
  }

  /** After a logout, a revoked grant or a new link: the fingerprint no longer names the link. */
  #accountNotCurrent(): void {
    if (this.#account?.current) this.#saveAccount({ ...this.#account, current: false });
  }

  #saveAccount(r: AccountRecord): void {
    this.#o.vault.put(RecordType.ACCOUNT, encodeAccountRecord(r));
    this.#account = r;
  }

  #loadAccount(): AccountRecord | null {
    try {
      const bytes = this.#o.vault.get(RecordType.ACCOUNT);
      return bytes ? decodeAccountRecord(bytes) : null;
    } catch {
      return null; // unreadable: read the profile again
    }
  }

  // ── scopes ───────────────────────────────────────────────────────────────────────────────

  /**
   * While linked, looks at the refused scopes again when they are due: `scopeRecheckMs` after
   * each was last found refused, by the wall-clock time kept with the refusal, so the schedule
   * holds across reboots (a speaker power-cycled every day still rechecks daily). One code-pair
   * request per scope; its code pair is not shown (the speaker is linked).
   */
  async #recheckLoop(signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.#o.clock.sleep(this.#recheckWait(), signal);
      const due = this.#dueForRecheck();
      let book = this.#book;
      let failed = false;
      for (const s of due) {
        try {
          await this.#codePair([s], signal);
          book = enabled(book, s);
        } catch (e) {
          if (isAbort(e, signal)) throw e;
          if (!isScopeRefusal(e)) {
            failed = true; // unreachable now: try again later
            break;
          }
          book = this.#refused(book, s, e);
        }
      }
      if (book !== this.#book) {
        this.#book = book;
        this.#saveBook();
        this.#emitCapabilities();
      }
      if (failed) await this.#o.clock.sleep(Math.min(this.#o.scopeRecheckMs, 3600_000), signal);
    }
  }

  /** Refused scopes (not the merely not-granted ones) due for a look. */
  #dueForRecheck(): string[] {
    const now = this.#o.clock.now();
    return Object.entries(this.#book.refused)
      .filter(([, r]) => r.reason !== "not_granted")
      .filter(([, r]) =>
        now >= BUILD_TIME_FLOOR && (r.at > now || now - r.at >= this.#o.scopeRecheckMs)
      )
      .map(([s]) => s);
  }

  /**
   * Milliseconds until the next refused scope is due. A refusal stamped in the future (the
   * clock was wrong then) is due now; with the wall clock unset, look again in 5 minutes.
   */
  #recheckWait(): number {
    const every = this.#o.scopeRecheckMs;
    const stamps = Object.values(this.#book.refused)
      .filter((r) => r.reason !== "not_granted")
      .map((r) => r.at);
    if (stamps.length === 0) return every;
    const now = this.#o.clock.now();
    if (now < BUILD_TIME_FLOOR) return Math.min(every, 300_000);
    let wait = every;
    for (const at of stamps) wait = Math.min(wait, at > now ? 0 : at + every - now);
    return Math.max(0, wait);
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
    this.#setDeadline(null);
    this.#granted = [];
    this.#firstRefreshAt = null;
    if (this.#o.vault.store.get(RecordType.TOKENS)) this.#o.vault.delete(RecordType.TOKENS);
    this.#accountNotCurrent();
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

  #setState(state: LinkStateName, error?: Problem): void {
    const prev = this.#state;
    const account = state === "linked" || state === "error"
      ? accountInfo(this.#account)
      : undefined;
    const same = prev.state === state && JSON.stringify(prev.error) === JSON.stringify(error) &&
      JSON.stringify(prev.scopes) === JSON.stringify(this.#granted) &&
      JSON.stringify(prev.account) === JSON.stringify(account);
    if (same) return;
    this.#state = {
      state,
      since: prev.state === state ? prev.since : Math.floor(this.#o.clock.now()),
      scopes: [...this.#granted],
      ...(error ? { error } : {}),
      ...(account ? { account } : {}),
    };
    this.#o.listener?.state?.(this.state);
  }

  #emitCapabilities(): void {
    this.#o.listener?.capabilities?.(this.capabilities);
  }
}
