/**
 * The link controller under Login with Amazon's real answers, each through the local
 * authorization server over real HTTP with fake time: the HTML "unknown scope" page, forgotten
 * code pairs, LWA's `servererror`, errors nobody documented, refused clients, `expires_in`
 * missing or a string, the profile and the account, and `cmd/refresh`.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAuthServer } from "../../dev/authserver/server.ts";
import type { Fetch } from "../auth/types.ts";
import { systemClock } from "../clock.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { RecordType } from "../records/types.ts";
import { drive } from "../../test/support/drive.ts";
import { prng } from "../../test/support/random.ts";
import { CLIENT, isState, newVault, rig } from "../../test/support/link_rig.ts";
import {
  type AccessToken,
  type LinkState,
  type PairingInfo,
  REFRESH_COOLDOWN_MS,
} from "../contract.ts";
import { LinkController } from "./controller.ts";

const MUSIC = "music::library:read";

/** Links a rig: start, approve the code, linked. */
async function link(r: ReturnType<typeof rig>, userId?: string): Promise<void> {
  await drive(r.clock, r.io, () => r.ctl.state.state === "pairing" && r.pairings.at(-1) != null, {
    label: "a code shown",
  });
  assert.ok(r.server.state.approve(r.code(), userId), "approved");
  await drive(r.clock, r.io, isState(r, "linked"), { label: "linked" });
}

const refreshes = (r: ReturnType<typeof rig>) =>
  r.io.log.filter((l) => l.form.grant_type === "refresh_token");

// ── 1. the seed's refusal ──────────────────────────────────────────────────────────────────

for (const style of ["html", "text", "json"] as const) {
  test(`LinkController: Amazon's ${style} "unknown scope" refusal settles [alexa:all, ${MUSIC}] in two requests, one code pair`, async () => {
    const r = rig({ client: { refusalStyle: style }, scopes: ["alexa:all", MUSIC] });
    await r.ctl.start();
    await link(r);
    const asks = r.paths("codepair").map((l) => l.form.scope);
    assert.equal(asks, [`alexa:all ${MUSIC}`, "alexa:all"], "two requests");
    assert.is(r.server.state.stats().codepair, 2);
    assert.equal(r.ctl.capabilities, {
      granted: ["alexa:all"],
      denied: [{ scope: MUSIC, reason: "unknown_scope" }],
    });
    assert.ok(!r.states.some((s) => s.error?.code === "internal"), "never internal");
    assert.ok(!r.states.some((s) => s.state === "error"), "never an error state");
    assert.is(r.pairings.filter((p) => p !== null).length, 1, "one code shown");
    await r.close();
  });
}

test("LinkController: an unrecognised non-JSON 400 is a coded protocol error, backed off", async () => {
  // A captive portal or a proxy answers the code-pair request with its own page.
  const page: (inner: Fetch) => Fetch = (inner) => (input, init) =>
    String(input).includes("codepair")
      ? Promise.resolve(
        new Response("<html><body><h1>400 Bad Request</h1>Request Header Or Cookie Too Large", {
          status: 400,
          headers: { "content-type": "text/html" },
        }),
      )
      : inner(input, init);
  const r = rig({ fetch: page });
  await r.ctl.start();
  await drive(r.clock, r.io, () => r.ctl.state.error !== undefined, { label: "an error" });
  assert.is(r.ctl.state.state, "error");
  assert.is(r.ctl.state.error?.code, "protocol");
  assert.match(r.ctl.state.error!.message, /HTTP 400/);
  const t0 = r.clock.monotonic();
  await r.clock.advance(25_000);
  await drive(r.clock, r.io, () => true);
  const inWindow = r.paths("codepair").filter((l) => l.at <= t0 + 25_000).length;
  // The Alexa SDK's retry table (0, 1, 2, 4, 10 s ...): not a tight loop.
  assert.ok(inWindow <= 7, `${inWindow} code-pair requests in 25 s`);
  await r.close();
});

test("LinkController: the refused-scope recheck keeps its schedule across reboots", async () => {
  const clock = new FakeClock();
  const server = startAuthServer({ clock, clients: [{ clientId: CLIENT }] });
  const r = rig({ clock, server, scopes: ["alexa:all", MUSIC] });
  await r.ctl.start();
  await link(r);
  const refusedAt = r.clock.now();
  await r.ctl.stop();
  // Off for 20 hours; Amazon enables the scope meanwhile.
  clock.setWall(clock.now() + 20 * 3600_000);
  server.state.enableScope(CLIENT, MUSIC);
  const again = rig({ clock, server, vault: r.vault, scopes: ["alexa:all", MUSIC] });
  await again.ctl.start();
  const booted = clock.monotonic();
  await drive(
    clock,
    again.io,
    () => again.caps.some((c) => c.denied.some((d) => d.reason === "available_after_relink")),
    { label: "noticed", maxMs: 25 * 3600_000 },
  );
  const probe = again.paths("codepair").at(-1)!;
  const dueAfterBoot = refusedAt + 24 * 3600_000 - (refusedAt + 20 * 3600_000);
  assert.ok(
    Math.abs(probe.at - booted - dueAfterBoot) < 60_000,
    `rechecked ${(probe.at - booted) / 3600_000} h after boot, 4 h expected`,
  );
  await again.close();
  await r.close();
  await server.close();
});

// ── 2. pairing and refresh errors the real server sends ────────────────────────────────────

test("LinkController: invalid_code_pair while polling shows a fresh code pair, then links", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, () => r.pairings.at(-1) != null, { label: "a code" });
  const first = r.code();
  assert.is(r.server.state.forget(), 1);
  await drive(r.clock, r.io, () => r.pairings.filter((p) => p !== null).length >= 2, {
    label: "a second code",
  });
  assert.is.not(r.code(), first);
  assert.is(r.ctl.state.state, "pairing");
  assert.is(r.paths("codepair").length, 2);
  await link(r);
  await r.close();
});

test("LinkController: invalid_code_pair over and over ends in the bounded renewals", async () => {
  const r = rig();
  r.server.state.setFault({ kind: "oauth_error", error: "invalid_code_pair", path: "poll" });
  await r.ctl.start();
  await drive(r.clock, r.io, () => r.ctl.state.state === "unlinked", { label: "given up" });
  assert.is(r.paths("codepair").length, 3, "the first code and two renewals");
  assert.is(r.ctl.state.error?.code, "code_expired");
  assert.is(r.pairings.at(-1), null);
  await r.close();
});

test("LinkController retries LWA's servererror (no underscore) while polling and asking for a code", async () => {
  const r = rig();
  r.server.state.setFault({
    kind: "oauth_error",
    error: "servererror",
    count: 2,
    path: "codepair",
  });
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"), { label: "pairing after servererror" });
  assert.is(r.paths("codepair").length, 3);
  r.server.state.setFault({ kind: "oauth_error", error: "servererror", count: 3, path: "poll" });
  await drive(r.clock, r.io, () => r.paths("token").length >= 4, { label: "four polls" });
  assert.is(r.ctl.state.state, "pairing");
  await link(r);
  await r.close();
});

test("LinkController keeps polling at the interval through an error it does not know, and says so", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, () => r.paths("token").length >= 1, { label: "a poll" });
  r.server.state.setFault({
    kind: "oauth_error",
    error: "temporarily_weird",
    description: "Something odd",
    count: 3,
    path: "poll",
  });
  await drive(r.clock, r.io, () => r.ctl.state.error?.code === "temporarily_weird", {
    label: "reported",
  });
  assert.is(r.ctl.state.state, "pairing", "still pairing");
  await drive(r.clock, r.io, () => r.paths("token").length >= 6, { label: "more polls" });
  const at = r.paths("token").map((l) => l.at);
  for (let i = 1; i < at.length; i++) assert.is(at[i]! - at[i - 1]!, 5000, "at the interval");
  await drive(r.clock, r.io, () => r.ctl.state.error === undefined, { label: "cleared" });
  await link(r);
  await r.close();
});

for (
  const error of [
    "invalid_client",
    "unauthorized_client",
    "invalid_request",
    "unsupported_grant_type",
  ] as const
) {
  test(`LinkController: a refresh refused with ${error} is client_rejected, final until pair()`, async () => {
    const r = rig({ client: { refreshRefusal: error } });
    await r.ctl.start();
    await link(r);
    const linkedAt = r.clock.monotonic();
    await drive(r.clock, r.io, () => r.ctl.state.error?.code === "client_rejected", {
      label: "client_rejected",
    });
    assert.ok(r.clock.monotonic() - linkedAt <= 120_000, "found within two minutes of linking");
    assert.is(r.ctl.state.state, "linked", "the token still serves");
    assert.match(r.ctl.state.error!.message, /security profile/);
    await r.clock.advance(6 * 3600_000);
    await drive(r.clock, r.io, () => true);
    const all = refreshes(r);
    const lastHour = all.filter((l) => l.at > linkedAt + 5 * 3600_000).length;
    console.log(
      `  ${error}: ${all.length} refresh request(s) in 6 h, ${lastHour} in the last hour`,
    );
    assert.is(all.length, 1, "one refresh, never again");
    assert.is(r.ctl.state.state, "error", "once the token is gone, an error");
    assert.is(r.ctl.state.error?.code, "client_rejected");
    assert.equal(await r.ctl.refreshNow("rejected"), r.ctl.state.error);
    // The user pairs again: a fresh link, refreshed again once.
    await r.ctl.pair();
    await link(r);
    await r.close();
  });
}

for (const style of ["omit", "string"] as const) {
  test(`LinkController links when expires_in is ${style === "omit" ? "missing" : "a string"}, and polls no more`, async () => {
    const r = rig({ client: { expiresInStyle: style } });
    await r.ctl.start();
    await link(r);
    assert.is(r.tokens[0]!.expires_in, 3600);
    const polls = r.paths("token").length;
    await r.clock.advance(50_000);
    await drive(r.clock, r.io, () => true);
    assert.is(r.paths("token").length, polls, "no poll after the link");
    await drive(r.clock, r.io, () => r.tokens.length >= 2, { label: "refreshed" });
    assert.is(r.tokens[1]!.expires_in, 3600);
    await r.close();
  });
}

test("LinkController sends Accept-Language from the Alexa SDK's list only", async () => {
  for (const [lang, sent] of [["de-AT", "de-DE"], ["nl-NL", "en-US"], ["ja-JP", "ja-JP"]]) {
    const seen: (string | null)[] = [];
    const spy: (inner: Fetch) => Fetch = (inner) => (input, init) => {
      seen.push(new Headers(init?.headers).get("accept-language"));
      return inner(input, init);
    };
    const r = rig({ fetch: spy, options: { lang: lang! } });
    await r.ctl.start();
    await drive(r.clock, r.io, isState(r, "pairing"));
    assert.is(seen[0], sent!, lang);
    await r.close();
  }
});

// ── 3. what the audio pipeline reports ─────────────────────────────────────────────────────

test("LinkController.refreshNow(): a revoked grant is unlinked at once, tokens wiped", async () => {
  const r = rig();
  await r.ctl.start();
  await link(r);
  await drive(r.clock, r.io, () => refreshes(r).length === 1, { label: "first refresh" });
  r.server.state.revokeClient(CLIENT);
  await r.clock.advance(REFRESH_COOLDOWN_MS);
  const t0 = r.clock.monotonic();
  const problem = await r.ctl.refreshNow("rejected");
  assert.is(problem?.code, "invalid_grant");
  assert.is(r.clock.monotonic() - t0, 0, "no wait");
  assert.is(r.ctl.state.state, "unlinked");
  assert.is(r.vault.get(RecordType.TOKENS), null);
  assert.equal(await r.ctl.refreshNow("rejected"), {
    code: "not_linked",
    message: "Not linked: there is no token to refresh",
  });
  await r.close();
});

test("LinkController.refreshNow(): many in a row cost one refresh per 30 s", async () => {
  const r = rig();
  await r.ctl.start();
  await link(r);
  await drive(r.clock, r.io, () => refreshes(r).length === 1, { label: "first refresh" });
  await r.clock.advance(REFRESH_COOLDOWN_MS);
  const n = refreshes(r).length;
  const answers = await Promise.all(Array.from({ length: 20 }, () => r.ctl.refreshNow("rejected")));
  assert.is(refreshes(r).length, n + 1, "one refresh for twenty commands");
  assert.ok(answers.every((a) => a === null), "all joined the one in flight");
  const later = await r.ctl.refreshNow("rejected");
  assert.is(later?.code, "rate_limited");
  assert.is(refreshes(r).length, n + 1);
  await r.clock.advance(REFRESH_COOLDOWN_MS);
  assert.is(await r.ctl.refreshNow("rejected"), null);
  assert.is(refreshes(r).length, n + 2);
  assert.is(r.tokens.length, n + 3, "each refresh announced its token");
  await r.close();
});

test("LinkController publishes an account fingerprint when profile:user_id is granted, and says when it changed", async () => {
  const scopes = ["alexa:all", "profile:user_id"];
  const alice = "amzn1.account.AAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const bob = "amzn1.account.BBBBBBBBBBBBBBBBBBBBBBBBBBBB";
  const r = rig({ client: { enabledScopes: scopes }, scopes });
  await r.ctl.start();
  await link(r, alice);
  await drive(r.clock, r.io, () => r.ctl.state.account !== undefined, { label: "account" });
  const a = r.ctl.state.account!;
  assert.match(a.fingerprint, /^[0-9a-f]{32}$/);
  assert.is(a.previous, undefined);
  assert.ok(!JSON.stringify(r.states).includes("AAAAAAAA"), "the id itself is never shown");
  assert.is(r.server.state.stats().profile, 1, "the profile read once");
  // The same account again: the same fingerprint, no change.
  await r.ctl.logout();
  await r.ctl.pair();
  await link(r, alice);
  await drive(r.clock, r.io, () => r.ctl.state.account !== undefined, { label: "account" });
  assert.equal(r.ctl.state.account, { fingerprint: a.fingerprint });
  // Another person's account: the state names the previous one, whose data must go.
  await r.ctl.logout();
  assert.is(r.ctl.state.account, undefined);
  await r.ctl.pair();
  await link(r, bob);
  await drive(r.clock, r.io, () => r.ctl.state.account !== undefined, { label: "account" });
  const b = r.ctl.state.account!;
  assert.is.not(b.fingerprint, a.fingerprint);
  assert.is(b.previous, a.fingerprint);
  // A reboot knows it without reading the profile again.
  await r.ctl.stop();
  const again = rig({ clock: r.clock, server: r.server, vault: r.vault, scopes });
  const reads = r.server.state.stats().profile;
  await again.ctl.start();
  assert.equal(again.ctl.state.account, b);
  await drive(r.clock, again.io, () => true);
  assert.is(r.server.state.stats().profile, reads);
  await again.close();
  await r.close();
});

test("LinkController reads no profile without profile:user_id", async () => {
  const r = rig();
  await r.ctl.start();
  await link(r);
  await drive(r.clock, r.io, () => refreshes(r).length === 1);
  assert.is(r.server.state.stats().profile, 0);
  assert.is(r.ctl.state.account, undefined);
  await r.close();
});

test("LinkController: every *_at and since is an integer, and expires_at holds still, with the real clock", async () => {
  const server = startAuthServer({
    clients: [{ clientId: CLIENT, interval: 1 }],
    autoApprove: true,
  });
  const states: LinkState[] = [];
  const pairings: (PairingInfo | null)[] = [];
  const tokens: AccessToken[] = [];
  const ctl = new LinkController({
    vault: newVault(),
    identity: { clientId: CLIENT, productId: "speaker", serial: "SN-LINK-1" },
    auth: {
      dialect: "lwa",
      codepairUrl: server.lwa.codepairUrl,
      tokenUrl: server.lwa.tokenUrl,
      scopes: ["alexa:all"],
      fallbackScopes: ["alexa:all"],
    },
    fetch,
    clock: systemClock,
    random: prng(3),
    listener: {
      state: (s) => states.push(s),
      pairing: (p) => pairings.push(p),
      token: (t) => tokens.push(t),
    },
  });
  try {
    await ctl.start();
    for (let i = 0; i < 500 && tokens.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.is(tokens.length, 1, "linked");
    const answers = [tokens[0]!];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 7));
      answers.push(ctl.currentToken()!);
    }
    for (const t of answers) assert.ok(Number.isInteger(t.expires_at), `${t.expires_at}`);
    assert.is(new Set(answers.map((t) => t.expires_at)).size, 1, "the same expires_at each time");
    for (const s of states) assert.ok(Number.isInteger(s.since), `since ${s.since}`);
    for (const p of pairings) if (p) assert.ok(Number.isInteger(p.expires_at));
  } finally {
    await ctl.stop();
    await server.close();
  }
});

test.run();
