/**
 * The per-client options that choose which of Amazon's real answers a client gets, over real
 * HTTP: refusalStyle, refreshRefusal, expiresInStyle and unknownCodeError.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  type Answer,
  assertError,
  CLIENT,
  lwaCodepair,
  lwaPoll,
  post,
  refresh,
  rfcCodepair,
  rfcPoll,
  withServer,
} from "../../test/support/authserver.ts";
import type { ClientConfig } from "./clients.ts";
import type { AuthServer } from "./server.ts";
import { UNKNOWN_SCOPE } from "./state.ts";

const MUSIC = "music::library:read";
const LINE = "400 Bad Request - An unknown scope was requested";

async function admin(s: AuthServer, method: string, route: string, body?: unknown) {
  const res = await fetch(`${s.adminUrl}${route}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/** Code pair, approval, first poll, in `dialect`: the tokens answer. */
async function link(
  s: AuthServer,
  clock: { advance(ms: number): Promise<void> },
  dialect: "lwa" | "rfc8628" = "lwa",
): Promise<Answer> {
  const pair = dialect === "lwa" ? await lwaCodepair(s) : await rfcCodepair(s);
  assert.ok(s.state.approve(pair.body["user_code"] as string));
  await clock.advance(5000);
  const t = dialect === "lwa" ? await lwaPoll(s, pair) : await rfcPoll(s, pair);
  assert.is(t.status, 200, JSON.stringify(t.body));
  return t;
}

/** A raw code-pair request of `dialect` for alexa:all and the music scope. */
function askMusic(s: AuthServer, dialect: "lwa" | "rfc8628"): Promise<Response> {
  const fields: Record<string, string> = { client_id: CLIENT, scope: `alexa:all ${MUSIC}` };
  if (dialect === "lwa") {
    fields["response_type"] = "device_code";
    fields["scope_data"] = JSON.stringify({
      "alexa:all": { productID: "p", productInstanceAttributes: { deviceSerialNumber: "s" } },
    });
  }
  return fetch(dialect === "lwa" ? s.lwa.codepairUrl : s.rfc8628.codepairUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
}

test("refusalStyle html: an unknown scope gets Amazon's HTML error page, HTTP 400", async () => {
  await withServer(async (s) => {
    for (const dialect of ["lwa", "rfc8628"] as const) {
      const res = await askMusic(s, dialect);
      const text = await res.text();
      assert.is(res.status, 400);
      assert.is(res.headers.get("content-type"), "text/html;charset=UTF-8");
      assert.match(text, /^<!DOCTYPE html>\n<html/);
      assert.match(text, /<\/html>\n$/);
      assert.ok(text.includes(`<title>${LINE}</title>`), text);
      assert.ok(text.includes(`>${LINE}</div>`), text);
      assert.throws(() => JSON.parse(text));
    }
    // Only the scope refusal is a page: other errors stay JSON, and alexa:all still links.
    assertError(await lwaCodepair(s, { client_id: "amzn1.nobody" }), "invalid_client");
    assertError(await lwaCodepair(s, { scope_data: "" }), "invalid_request");
    assert.is((await lwaCodepair(s)).status, 200);
    assert.is(s.state.stats().codepair, 5);
  }, { clients: [{ clientId: CLIENT, refusalStyle: "html" }] });
});

test("refusalStyle text: one line of text/plain, HTTP 400; json (default): invalid_scope", async () => {
  await withServer(async (s) => {
    const res = await askMusic(s, "lwa");
    assert.is(res.status, 400);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    assert.is(await res.text(), LINE);
    // Switched to json through the admin API: today's answer.
    const set = await admin(s, "POST", "/clients", { clientId: CLIENT, refusalStyle: "json" });
    assert.is((set.body["client"] as ClientConfig).refusalStyle, "json");
    const a = await lwaCodepair(s, { scope: `alexa:all ${MUSIC}` });
    assert.equal(a.body, { error: "invalid_scope", error_description: UNKNOWN_SCOPE });
    assert.is(a.status, 400);
    // Enabled: the same request is accepted whatever the style.
    s.state.addClient({
      clientId: CLIENT,
      refusalStyle: "text",
      enabledScopes: ["alexa:all", MUSIC],
    });
    assert.is((await lwaCodepair(s, { scope: `alexa:all ${MUSIC}` })).status, 200);
  }, { clients: [{ clientId: CLIENT, refusalStyle: "text" }] });
});

test("refreshRefusal: every refresh of the client is refused with LWA's words; linking works", async () => {
  const words: Record<string, string> = {
    invalid_request: "The request is missing a required parameter : client_secret",
    invalid_client: "Client authentication failed",
    unauthorized_client: "Not authorized for requested operation",
    unsupported_grant_type:
      "The authorization grant type is not supported by the authorization server",
  };
  await withServer(async (s, clock) => {
    for (const [error, description] of Object.entries(words)) {
      for (const dialect of ["lwa", "rfc8628"] as const) {
        const added = await admin(s, "POST", "/clients", {
          clientId: CLIENT,
          refreshRefusal: error,
        });
        assert.is(added.status, 200, JSON.stringify(added.body));
        const t = await link(s, clock, dialect);
        const url = dialect === "lwa" ? s.lwa.tokenUrl : s.rfc8628.tokenUrl;
        const r0 = t.body["refresh_token"] as string;
        for (let i = 0; i < 2; i++) {
          const a = await refresh(url, r0);
          assert.is(a.status, 400);
          assert.equal(a.body, { error, error_description: description });
          assertError(a, error);
        }
        // The security profile fixed: the same refresh token works (it was never used up).
        await admin(s, "POST", "/clients", { clientId: CLIENT, refreshRefusal: null });
        assert.is((await refresh(url, r0)).status, 200);
      }
    }
    const listed = await admin(s, "GET", "/clients");
    assert.is((listed.body["clients"] as ClientConfig[])[0]!.refreshRefusal, null);
  });
});

test("expiresInStyle: expires_in as a number, a string, or left out, on polls and refreshes", async () => {
  await withServer(async (s, clock) => {
    const cases = [["number", 300], ["string", "300"], ["omit", undefined]] as const;
    for (const [style, expected] of cases) {
      s.state.addClient({ clientId: CLIENT, tokenLifetime: 300, expiresInStyle: style });
      for (const dialect of ["lwa", "rfc8628"] as const) {
        const t = await link(s, clock, dialect);
        const r = await refresh(
          dialect === "lwa" ? s.lwa.tokenUrl : s.rfc8628.tokenUrl,
          t.body["refresh_token"] as string,
        );
        assert.is(r.status, 200);
        for (const a of [t, r]) {
          assert.is(a.body["expires_in"], expected, `${style} ${dialect}`);
          assert.is("expires_in" in a.body, style !== "omit");
          assert.type(a.body["access_token"], "string");
        }
        // The token lives as long either way.
        assert.is(s.state.introspect(r.body["access_token"] as string).expires_in, 300);
      }
    }
  });
});

test("unknownCodeError: lwa invalid_code_pair and rfc8628 invalid_grant by default, or as set", async () => {
  await withServer(async (s) => {
    const lwa = { body: { device_code: "nope", user_code: "ABCDEF" } } as unknown as Answer;
    const rfc = { body: { device_code: "nope" } } as unknown as Answer;
    assertError(await lwaPoll(s, lwa), "invalid_code_pair");
    assertError(await rfcPoll(s, rfc), "invalid_grant");

    s.state.addClient({ clientId: CLIENT, unknownCodeError: "invalid_grant" });
    const grant = await lwaPoll(s, lwa);
    assert.equal(grant.body, {
      error: "invalid_grant",
      error_description: "The request has an invalid grant parameter : device_code",
    });
    s.state.addClient({ clientId: CLIENT, unknownCodeError: "invalid_code_pair" });
    const pairErr = await rfcPoll(s, rfc);
    assert.equal(pairErr.body, {
      error: "invalid_code_pair",
      error_description: "The code pair given is invalid or expired",
    });
    assert.is(pairErr.status, 400);

    // An lwa poll names no client: clients that disagree leave it to the dialect's error.
    s.state.addClient({ clientId: CLIENT, unknownCodeError: "invalid_grant" });
    s.state.addClient({ clientId: "other" });
    assertError(await lwaPoll(s, lwa), "invalid_code_pair");
    // A forgotten code still knows whose it was.
    const pair = await lwaCodepair(s);
    assert.is(s.state.forget(pair.body["user_code"] as string), 1);
    assertError(await lwaPoll(s, pair), "invalid_grant");
  });
});

test("addClient checks the new options; GET /_admin/clients shows them", async () => {
  await withServer(async (s) => {
    const bad: unknown[] = [
      { clientId: "x", refusalStyle: "xml" },
      { clientId: "x", refusalStyle: null },
      { clientId: "x", refreshRefusal: "invalid_grant" },
      { clientId: "x", expiresInStyle: 3600 },
      { clientId: "x", unknownCodeError: "expired_token" },
    ];
    for (const b of bad) {
      const r = await admin(s, "POST", "/clients", b);
      assert.is(r.status, 400, JSON.stringify(b));
      const key = Object.keys(b as object)[1]!;
      assert.match(r.body["error_description"] as string, key);
      assert.throws(() => s.state.addClient(b as ClientConfig), new RegExp(key));
    }
    const options = {
      clientId: "web1",
      refusalStyle: "html",
      refreshRefusal: "unauthorized_client",
      expiresInStyle: "string",
      unknownCodeError: "invalid_grant",
    };
    assert.is((await admin(s, "POST", "/clients", options)).status, 200);
    const listed = (await admin(s, "GET", "/clients")).body["clients"] as Record<string, unknown>[];
    const web1 = listed.find((c) => c["clientId"] === "web1")!;
    for (const [k, v] of Object.entries(options)) assert.is(web1[k], v, k);
    // Posted back as it was listed, a client is accepted unchanged.
    const again = await admin(s, "POST", "/clients", web1);
    assert.equal(again.body["client"], web1);
    assert.is((await post(s.lwa.codepairUrl, {})).status, 400);
  });
});

test.run();
