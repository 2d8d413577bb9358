/**
 * The verification page: its HTML (escaping, the three steps) over plain HTTP, and the whole
 * flow in Debian's headless Chromium driven by playwright-core, with page JavaScript disabled.
 *
 * Chromium is /usr/bin/chromium (scripts/setup.sh installs it). Without it the browser tests are
 * skipped with a warning, except on CI (CI set), where they fail.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { FakeClock } from "../../test/support/fake_clock.ts";
import {
  assertError,
  CLIENT,
  lwaCodepair,
  lwaPoll,
  rfcCodepair,
  rfcPoll,
} from "../../test/support/authserver.ts";
import { confirmPage, entryPage, escapeHtml, resultPage } from "./page.ts";
import { type AuthServer, startAuthServer } from "./server.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = "/tmp/linkd-authserver";

function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const onCi = (Deno.env.get("CI") ?? "") !== "";
const browserTest = hasChromium() || onCi ? test : test.skip;
if (!hasChromium()) {
  console.warn(
    `page_test: ${CHROMIUM} is missing: ${onCi ? "failing" : "skipping"} the browser tests ` +
      "(install it with scripts/setup.sh or apt-get install chromium)",
  );
}

let browser: Browser | null = null;
let context: BrowserContext | null = null;
let server: AuthServer;
let clock: FakeClock;

test.before.each(() => {
  clock = new FakeClock();
  server = startAuthServer({
    clock,
    clients: [{
      clientId: CLIENT,
      name: "Kitchen speaker",
      enabledScopes: ["alexa:all", "profile"],
    }],
  });
});

test.after.each(async () => {
  await context?.close();
  context = null;
  await server.close();
});

test.after(async () => {
  await browser?.close();
});

/** A fresh browser context with page JavaScript off: the page must work without it. */
async function newPage() {
  if (!hasChromium()) {
    assert.unreachable(`Chromium is missing at ${CHROMIUM}: run scripts/setup.sh`);
  }
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context = await browser.newContext({
    javaScriptEnabled: false,
    viewport: { width: 480, height: 640 },
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  // Nothing but this server may be asked for anything.
  const foreign: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(server.url)) foreign.push(r.url());
  });
  return { page, foreign };
}

// ── HTML, over plain HTTP ───────────────────────────────────────────────────

test("escapeHtml() escapes every character that could leave text or an attribute", () => {
  assert.is(
    escapeHtml(`<a href="x" onclick='y'>&\`</a>`),
    "&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;&#96;&#60;/a&#62;",
  );
});

test("entryPage(), confirmPage() and resultPage() escape what they echo", () => {
  const evil = `"><script>alert(1)</script>`;
  for (
    const html of [
      entryPage({ userCode: evil, error: evil }),
      confirmPage({
        ok: true,
        userCode: evil,
        clientId: evil,
        clientName: evil,
        scopes: [evil],
        device: { productId: evil, serial: evil },
        nonce: evil,
      }),
      resultPage(true, evil),
      resultPage(false, evil),
    ]
  ) {
    assert.not.ok(html.includes("<script"), html);
    assert.not.match(html, /\bsrc=|\bhref=|<link|@import|url\(/); // no external resource
  }
});

test("GET /code shows the form, prefilled (escaped) from ?user_code=, with a strict CSP", async () => {
  const res = await fetch(`${server.verificationUrl}?user_code=${encodeURIComponent('ab"<cd')}`);
  const html = await res.text();
  assert.is(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", "text/html");
  assert.match(res.headers.get("content-security-policy") ?? "", "default-src 'none'");
  assert.match(html, 'value="ab&#34;&#60;cd"');
  assert.match(html, 'action="/code"');
  assert.is(server.state.stats().page, 1);
});

test("POST /code with an unknown, expired or used code shows an error on the page", async () => {
  const lookup = (code: string) =>
    fetch(server.verificationUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ user_code: code }),
    }).then(async (r) => ({ status: r.status, html: await r.text() }));
  const unknown = await lookup("QQQQQQ");
  assert.is(unknown.status, 400);
  assert.match(unknown.html, "That code is not valid");
  assert.match((await lookup("")).html, "Enter the code");

  const pair = await lwaCodepair(server);
  const code = pair.body["user_code"] as string;
  assert.match((await lookup(code.toLowerCase())).html, 'id="approve"');
  server.state.approve(code);
  assert.match((await lookup(code)).html, "already been used");

  const late = (await lwaCodepair(server)).body["user_code"] as string;
  await clock.advance(600_000);
  assert.match((await lookup(late)).html, "That code has expired");
});

test("POST /code/confirm refuses a decision without the confirmation step's nonce", async () => {
  const pair = await lwaCodepair(server);
  const res = await fetch(`${server.url}/code/confirm`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      user_code: pair.body["user_code"] as string,
      nonce: "forged",
      decision: "approve",
    }),
  });
  assert.is(res.status, 400);
  await res.body?.cancel();
  assert.is(server.state.pending().length, 1);
});

// ── in Chromium ─────────────────────────────────────────────────────────────

browserTest(
  "in Chromium: type the code in lowercase without its dash, approve, get tokens",
  async () => {
    const { page, foreign } = await newPage();
    const pair = await rfcCodepair(server, { scope: "alexa:all profile" });
    const code = pair.body["user_code"] as string; // XXXX-XXXX
    const typed = code.replace("-", "").toLowerCase();

    await page.goto(server.verificationUrl);
    assert.is(await page.title(), "Register your device");
    await Deno.mkdir(SHOTS, { recursive: true });
    await page.fill("#user_code", typed);
    await page.screenshot({ path: `${SHOTS}/1-enter-code.png`, fullPage: true });
    await page.click("#continue");

    await page.waitForSelector("#approve");
    assert.is(await page.textContent("#code"), code);
    assert.is(await page.textContent("#client"), "Kitchen speaker");
    const scopes = await page.textContent("#scopes") ?? "";
    assert.match(scopes, "alexa:all");
    assert.match(scopes, "profile");
    assert.ok(await page.isVisible("#deny"));
    await page.screenshot({ path: `${SHOTS}/2-confirm.png`, fullPage: true });
    await page.click("#approve");

    await page.waitForSelector("#result");
    assert.is(await page.getAttribute("#result", "data-result"), "approved");
    assert.match(await page.textContent("#result") ?? "", "now linked");
    await page.screenshot({ path: `${SHOTS}/3-approved.png`, fullPage: true });

    await clock.advance(5000);
    const t = await rfcPoll(server, pair);
    assert.is(t.status, 200, JSON.stringify(t.body));
    assert.match(t.body["access_token"] as string, /^Atza\|/);
    assert.match(t.body["refresh_token"] as string, /^Atzr\|/);
    assert.is(t.body["scope"], "alexa:all profile");
    assert.equal(foreign, []);
    assert.ok(server.state.stats().page >= 3);
  },
);

browserTest(
  "in Chromium: the prefilled link, then Deny: the device gets access_denied",
  async () => {
    const { page } = await newPage();
    const pair = await lwaCodepair(server);
    const code = pair.body["user_code"] as string;
    await page.goto(`${server.verificationUrl}?user_code=${code.toLowerCase()}`);
    assert.is(await page.inputValue("#user_code"), code.toLowerCase());
    await page.click("#continue");
    await page.waitForSelector("#deny");
    assert.match(await page.textContent("#device") ?? "", "SN-0001");
    await page.click("#deny");
    await page.waitForSelector("#result");
    assert.is(await page.getAttribute("#result", "data-result"), "denied");
    await page.screenshot({ path: `${SHOTS}/4-denied.png`, fullPage: true });

    await clock.advance(5000);
    assertError(await lwaPoll(server, pair), "access_denied");
  },
);

browserTest("in Chromium: a wrong code shows the error and keeps what was typed", async () => {
  const { page } = await newPage();
  await lwaCodepair(server);
  await page.goto(server.verificationUrl);
  await page.fill("#user_code", "zz-zzzz");
  await page.click("#continue");
  await page.waitForSelector("#error");
  assert.match(await page.textContent("#error") ?? "", "not valid");
  assert.is(await page.inputValue("#user_code"), "zz-zzzz");
  await page.screenshot({ path: `${SHOTS}/5-error.png`, fullPage: true });
  assert.is(server.state.pending().length, 1);
});

test.run();
