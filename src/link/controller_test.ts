/**
 * The link controller against the local authorization server over real HTTP on 127.0.0.1,
 * with fake time: hours of protocol time run in a fraction of a second.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAuthServer } from "../../dev/authserver/server.ts";
import type { Fetch } from "../auth/types.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { RecordType } from "../records/types.ts";
import { decodeTokenRecord, encodeTokenRecord } from "../records/token.ts";
import { drive } from "../../test/support/drive.ts";
import { CLIENT, isState, newVault, rig } from "../../test/support/link_rig.ts";

test("LinkController pairs at boot, seals the tokens, then announces them", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, () => r.pairings.some((p) => p !== null), { label: "a code" });
  assert.is(r.ctl.state.state, "pairing");
  const shown = r.pairings.find((p) => p !== null)!;
  assert.match(shown.user_code, /^[A-Z]{6}$/);
  assert.is(shown.expires_in, 600);
  assert.is(shown.interval, 5);
  assert.ok(shown.verification_uri.startsWith(r.server.url));
  assert.is(r.server.state.approve(shown.user_code), true);
  await drive(r.clock, r.io, isState(r, "linked"), { label: "linked" });
  assert.is(r.tokens.length, 1);
  assert.match(r.tokens[0]!.access_token, /^Atza\|/);
  assert.is(r.tokens[0]!.expires_in, 3600);
  assert.equal(r.tokens[0]!.scopes, ["alexa:all"]);
  assert.is(r.pairings[r.pairings.length - 1], null, "the code is taken down");
  const sealed = decodeTokenRecord(r.vault.get(RecordType.TOKENS)!);
  assert.match(sealed.refresh_token, /^Atzr\|/);
  assert.is(r.sealedAtEvent[0], sealed.refresh_token, "sealed before announced");
  // Polls kept the server's interval: never faster than 5 s.
  const polls = r.paths("token");
  for (let i = 1; i < polls.length; i++) assert.ok(polls[i]!.at - polls[i - 1]!.at >= 5000);
  assert.equal(
    Object.keys(polls[0]!.form).sort(),
    ["device_code", "grant_type", "user_code"],
    "LWA poll",
  );
  await r.close();
});

test("LinkController follows slow_down: 5 s more for this and every later poll", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, () => r.paths("token").length >= 2, { label: "two polls" });
  r.server.state.setFault({ kind: "slow_down", count: 2 });
  await drive(r.clock, r.io, () => r.paths("token").length >= 6, { label: "six polls" });
  const at = r.paths("token").map((l) => l.at);
  const gaps = at.slice(1).map((t, i) => t - at[i]!);
  assert.equal(gaps.slice(0, 5), [5000, 5000, 10000, 15000, 15000], `gaps ${gaps}`);
  await r.close();
});

test("LinkController renews an expired code twice, then waits unlinked for pair()", async () => {
  const r = rig({ client: { codeLifetime: 60 } });
  await r.ctl.start();
  await drive(
    r.clock,
    r.io,
    () => r.ctl.state.state === "unlinked" && r.paths("codepair").length >= 3,
    {
      label: "given up",
    },
  );
  assert.is(r.paths("codepair").length, 3, "first code and two renewals");
  assert.is(r.ctl.state.error?.code, "code_expired");
  assert.is(r.pairings[r.pairings.length - 1], null);
  const requests = r.io.log.length;
  await r.clock.advance(3600_000);
  assert.is(r.io.log.length, requests, "no request while waiting for the user");
  await r.ctl.pair();
  await drive(r.clock, r.io, isState(r, "pairing"), { label: "pairing again" });
  assert.is(r.paths("codepair").length, 4);
  await r.close();
});

test("LinkController ends a declined link unlinked with access_denied", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.deny(r.code());
  await drive(r.clock, r.io, isState(r, "unlinked"), { label: "unlinked" });
  assert.is(r.ctl.state.error?.code, "access_denied");
  assert.is(r.vault.get(RecordType.TOKENS), null);
  await r.close();
});

test("LinkController refreshes a minute after linking, then 10 minutes ahead, rotating the refresh token sealed first", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  const linkedAt = r.clock.monotonic();
  await drive(r.clock, r.io, () => r.tokens.length >= 3, { label: "two refreshes" });
  const refreshes = r.io.log.filter((l) => l.form.grant_type === "refresh_token");
  assert.is(refreshes.length, 2);
  assert.is(refreshes[0]!.at - linkedAt, 60_000, "the first a minute after linking");
  assert.is(refreshes[1]!.at - refreshes[0]!.at, 3000_000, "at 50 minutes of a 60-minute token");
  assert.is(refreshes[0]!.form.client_id, CLIENT);
  assert.is.not(r.tokens[1]!.access_token, r.tokens[0]!.access_token);
  assert.is.not(r.sealedAtEvent[1], r.sealedAtEvent[0], "a new refresh token");
  assert.is(decodeTokenRecord(r.vault.get(RecordType.TOKENS)!).refresh_token, r.sealedAtEvent[2]);
  await r.close();
});

test("LinkController refreshes short-lived tokens at three quarters of their life", async () => {
  const r = rig({ client: { tokenLifetime: 60 } });
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  const t0 = r.clock.monotonic();
  await drive(r.clock, r.io, () => r.tokens.length >= 2);
  const refresh = r.io.log.find((l) => l.form.grant_type === "refresh_token")!;
  assert.is(refresh.at - t0, 45_000);
  await r.close();
});

test("LinkController rides out an hour-long outage: bounded requests, still linked, heals", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  await r.clock.advance(3000_000 - 1000); // just before the refresh is due
  r.server.state.setFault({ kind: "status", status: 503 });
  const before = r.io.log.length;
  const t0 = r.clock.monotonic();
  await drive(r.clock, r.io, () => r.clock.monotonic() - t0 >= 3600_000, {
    label: "an hour",
    maxMs: 3700_000,
  });
  const during = r.io.log.filter((l) => l.at >= t0 && l.at < t0 + 3600_000).length;
  console.log(`  ${during} refresh requests during a 1-hour outage`);
  assert.ok(during <= 31, `${during} requests`);
  assert.ok(during >= 10, "it kept trying");
  assert.is(r.ctl.state.state, "linked", "transport errors never unlink");
  assert.is(r.ctl.state.error?.code, "server_error");
  assert.ok(r.io.log.length > before);
  r.server.state.setFault(null);
  const n = r.tokens.length;
  await drive(r.clock, r.io, () => r.tokens.length > n, { label: "healed", maxMs: 600_000 });
  assert.is(r.ctl.state.error, undefined);
  await r.close();
});

test("LinkController keeps serving a valid token while refreshes fail", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  r.server.state.setFault({ kind: "hang" });
  await r.clock.advance(3300_000); // refresh due at 3000 s; hung requests time out
  await drive(r.clock, r.io, () => r.ctl.state.error !== undefined, { label: "an error" });
  const t = r.ctl.currentToken();
  assert.ok(t, "the token is still served");
  assert.ok(t!.expires_in > 0 && t!.expires_in <= 300, `${t!.expires_in}`);
  await r.close();
});

test("LinkController: invalid_grant (deregistered) wipes the tokens and waits unlinked", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  r.server.state.revokeClient(CLIENT);
  await drive(r.clock, r.io, isState(r, "unlinked"), { label: "unlinked" });
  assert.is(r.ctl.state.error?.code, "invalid_grant");
  assert.is(r.vault.get(RecordType.TOKENS), null, "tokens wiped");
  assert.is(r.ctl.currentToken(), null);
  await r.clock.advance(7200_000);
  assert.is(r.ctl.state.state, "unlinked", "waits for the user");
  await r.close();
});

test("LinkController finds refused scopes, one code pair issued, links with the rest, reports why", async () => {
  const wanted = ["alexa:all", "music::library:read", "music::catalog"];
  const r = rig({ scopes: wanted });
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"), { label: "pairing" });
  const asks = r.paths("codepair").map((l) => l.form.scope);
  assert.equal(asks, [
    wanted.join(" "),
    "alexa:all music::library:read",
    "alexa:all",
    "alexa:all music::catalog",
  ]);
  assert.is(r.server.state.pending().length, 1, "one code pair issued, and it is the one shown");
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  assert.equal(r.ctl.capabilities, {
    granted: ["alexa:all"],
    denied: [
      { scope: "music::library:read", reason: "unknown_scope" },
      { scope: "music::catalog", reason: "unknown_scope" },
    ],
  });
  assert.equal(r.tokens[0]!.scopes, ["alexa:all"]);
  // A reboot remembers: it asks for what works, with no probe.
  await r.ctl.stop();
  const again = rig({ scopes: wanted, vault: r.vault, clock: r.clock, server: r.server });
  await again.ctl.start();
  assert.is(again.ctl.state.state, "linked");
  assert.equal(again.ctl.capabilities.denied.map((d) => d.reason), [
    "unknown_scope",
    "unknown_scope",
  ]);
  // The day Amazon enables a scope, the daily look notices, and a re-link grants it.
  r.server.state.enableScope(CLIENT, "music::library:read");
  await drive(
    r.clock,
    again.io,
    () => again.caps.some((c) => c.denied.some((d) => d.reason === "available_after_relink")),
    {
      label: "noticed",
      maxMs: 25 * 3600_000,
    },
  );
  assert.equal(again.ctl.capabilities.denied, [
    { scope: "music::library:read", reason: "available_after_relink" },
    { scope: "music::catalog", reason: "unknown_scope" },
  ]);
  await again.ctl.pair();
  await drive(
    r.clock,
    again.io,
    () => again.ctl.state.state === "pairing" && again.pairings.at(-1) !== null,
  );
  again.server.state.approve(again.code());
  await drive(
    r.clock,
    again.io,
    () => again.tokens.length >= 2 && again.ctl.state.state === "linked",
  );
  assert.equal(again.ctl.capabilities.granted, ["alexa:all", "music::library:read"]);
  assert.equal(again.ctl.capabilities.denied, [{
    scope: "music::catalog",
    reason: "unknown_scope",
  }]);
  await again.ctl.stop();
  await r.server.close();
});

test("LinkController links with the fallback scopes when every wanted scope is refused", async () => {
  const r = rig({ scopes: ["music::library:read"], fallbackScopes: ["alexa:all"] });
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  assert.equal(r.paths("codepair").map((l) => l.form.scope), ["music::library:read", "alexa:all"]);
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  assert.equal(r.ctl.capabilities, {
    granted: ["alexa:all"],
    denied: [{ scope: "music::library:read", reason: "unknown_scope" }],
  });
  await r.close();
});

test("LinkController boots from a sealed valid token without touching the network", async () => {
  const clock = new FakeClock();
  const vault = newVault();
  vault.put(
    RecordType.TOKENS,
    encodeTokenRecord({
      access_token: "Atza|sealed",
      refresh_token: "Atzr|sealed",
      token_type: "bearer",
      scopes: ["alexa:all"],
      expires_in: 3600,
      obtained_at: clock.now() - 600_000,
      expires_at: clock.now() + 3000_000,
      client_id: CLIENT,
    }),
  );
  const r = rig({ vault, clock });
  await r.ctl.start();
  assert.is(r.ctl.state.state, "linked");
  assert.is(r.tokens.length, 1);
  assert.is(r.tokens[0]!.access_token, "Atza|sealed");
  assert.is(r.tokens[0]!.expires_in, 3000);
  await new Promise((res) => setTimeout(res, 20));
  assert.is(r.io.log.length, 0, "no request at boot");
  await r.close();
});

test("LinkController boots with an expired sealed token: refreshes first, announces after", async () => {
  const clock = new FakeClock();
  const r0 = rig({ clock });
  await r0.ctl.start();
  await drive(clock, r0.io, isState(r0, "pairing"));
  r0.server.state.approve(r0.code());
  await drive(clock, r0.io, isState(r0, "linked"));
  await r0.ctl.stop();
  clock.setWall(clock.now() + 5 * 3600_000); // powered off for five hours
  const r = rig({ clock, vault: r0.vault, server: r0.server });
  await r.ctl.start();
  assert.is(r.tokens.length, 0, "an expired token is not announced");
  await drive(clock, r.io, () => r.tokens.length === 1, { label: "refreshed" });
  assert.is(r.io.log.length, 1, "one refresh");
  assert.is(r.io.log[0]!.form.grant_type, "refresh_token");
  await r.close();
  await r0.server.close();
});

test("LinkController: a clock years off at boot only changes *_at; clock_unset heals when time is set", async () => {
  const clock = new FakeClock({ wall: Date.UTC(1970, 0, 2) });
  // TLS with a clock years off: the certificate is "not yet valid".
  const tlsFails: (inner: Fetch) => Fetch = (inner) => (input, init) =>
    clock.now() < Date.UTC(2026, 0, 1)
      ? Promise.reject(
        new TypeError("fetch failed", {
          cause: new Error("client error (Connect): invalid peer certificate: NotValidYet"),
        }),
      )
      : inner(input, init);
  const r = rig({ clock, fetch: tlsFails });
  await r.ctl.start();
  await drive(clock, r.io, () => r.ctl.state.error?.code === "clock_unset", {
    label: "clock_unset",
  });
  assert.is(r.ctl.state.state, "error");
  const tries = r.io.log.length;
  clock.setWall(Date.UTC(2026, 10, 24, 12)); // NTP sets the time
  const t0 = clock.monotonic();
  await drive(clock, r.io, isState(r, "pairing"), { label: "pairing after time sync" });
  assert.ok(clock.monotonic() - t0 <= 5000, "retried within 5 s of the clock moving");
  assert.ok(r.io.log.length > tries);
  const p = r.pairings.find((x) => x !== null)!;
  assert.ok(
    Math.abs(p.expires_at - (Date.UTC(2026, 10, 24, 12) + 600_000)) < 10_000,
    "expires_at by the new clock",
  );
  await r.close();
});

test("LinkController.logout() and stop() cancel a poll and a hung request at once", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.setFault({ kind: "hang" });
  await r.clock.advance(5000); // a poll starts and hangs
  await new Promise((res) => setTimeout(res, 20));
  const t0 = performance.now();
  await r.ctl.logout();
  assert.ok(performance.now() - t0 < 1000, "logout does not wait for the request");
  assert.is(r.ctl.state.state, "unlinked");
  assert.is(r.pairings.at(-1), null);
  const n = r.io.log.length;
  await r.clock.advance(600_000);
  assert.is(r.io.log.length, n, "nothing polls after logout");
  await r.close();
});

test("LinkController keeps polling through server errors: transport failures never unlink", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  r.server.state.setFault({ kind: "status", status: 500, count: 3, path: "token" });
  await drive(r.clock, r.io, () => r.paths("token").length >= 4);
  assert.is(r.ctl.state.state, "pairing");
  r.server.state.approve(r.code());
  await drive(r.clock, r.io, isState(r, "linked"));
  await r.close();
});

test("LinkController speaks RFC 8628: URN grant, client_id on polls, the complete URI shown", async () => {
  const r = rig({ dialect: "rfc8628" });
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  const p = r.pairings.find((x) => x !== null)!;
  assert.match(p.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.ok(p.verification_uri_complete?.includes("user_code="));
  r.server.state.approve(p.user_code.toLowerCase().replace("-", ""));
  await drive(r.clock, r.io, isState(r, "linked"));
  const poll = r.paths("token")[0]!;
  assert.is(poll.form.grant_type, "urn:ietf:params:oauth:grant-type:device_code");
  assert.is(poll.form.client_id, CLIENT);
  await r.close();
});

test("LinkController: two pair() calls in one tick run one pairing; pair() then logout() ends unlinked", async () => {
  const r = rig();
  await r.ctl.start();
  await drive(r.clock, r.io, isState(r, "pairing"));
  void r.ctl.pair();
  await r.ctl.pair();
  const polls0 = r.paths("token").length;
  await r.clock.advance(60_000);
  await drive(r.clock, r.io, () => true);
  const polls = r.paths("token").length - polls0;
  assert.ok(polls <= 13, `${polls} polls in 60 s: one poll loop, not two`);
  void r.ctl.pair();
  await r.ctl.logout();
  await r.clock.advance(60_000);
  await drive(r.clock, r.io, () => true);
  assert.is(r.ctl.state.state, "unlinked");
  const n = r.io.log.length;
  await r.clock.advance(600_000);
  await drive(r.clock, r.io, () => true);
  assert.is(r.io.log.length, n, "nothing polls after the logout");
  await r.close();
});

test("LinkController: a refresh in flight at shutdown lands and is sealed, so the rotated token is kept", async () => {
  const clock = new FakeClock();
  const server = startAuthServer({ clock, clients: [{ clientId: CLIENT, refreshGrace: 0 }] });
  // Refresh answers arrive late: the server has rotated the token before linkd reads it.
  const slow: (inner: Fetch) => Fetch = (inner) => async (input, init) => {
    const res = await inner(input, init);
    if (String(init?.body ?? "").includes("grant_type=refresh_token")) {
      await new Promise((x) => setTimeout(x, 100));
    }
    return res;
  };
  const r = rig({ clock, server, fetch: slow, options: { abortGraceMs: 2000 } });
  await r.ctl.start();
  await drive(clock, r.io, isState(r, "pairing"));
  server.state.approve(r.code());
  await drive(clock, r.io, isState(r, "linked"));
  await clock.advance(60_000); // the first refresh after linking is due and goes out
  for (let i = 0; i < 50 && r.io.inflight === 0; i++) await new Promise((x) => setTimeout(x, 2));
  assert.is(r.io.inflight, 1, "a refresh is in flight");
  await r.ctl.stop(); // SIGTERM now
  const sealed = decodeTokenRecord(r.vault.get(RecordType.TOKENS)!);
  assert.is(sealed.refresh_token, r.sealedAtEvent.at(-1), "the rotated refresh token was sealed");
  assert.is(r.tokens.length, 2);
  // A reboot much later refreshes with it: still linked.
  clock.setWall(clock.now() + 7200_000);
  const again = rig({ clock, server, vault: r.vault });
  await again.ctl.start();
  await drive(clock, again.io, () => again.tokens.length > 0 || again.ctl.state.state !== "linked");
  assert.is(again.ctl.state.state, "linked");
  await again.close();
  await r.close();
  await server.close();
});

test("LinkController retries a busy server (429, 503) while obtaining a code instead of giving up", async () => {
  const clock = new FakeClock();
  const server = startAuthServer({ clock, clients: [{ clientId: CLIENT }] });
  server.state.setFault({ kind: "status", status: 429, count: 2, path: "codepair" });
  const r = rig({ clock, server });
  await r.ctl.start();
  await drive(clock, r.io, isState(r, "pairing"), { label: "pairing after the server recovers" });
  assert.ok(r.paths("codepair").length >= 3);
  await r.close();
  await server.close();
});

test.run();
