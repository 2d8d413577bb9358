/**
 * The profile step against the local authorization server over real HTTP: the user id of the
 * account that approved, and the refusals a bad token or a missing scope get.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAuthServer } from "../../dev/authserver/server.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { OAuthError } from "./errors.ts";
import {
  canReadProfile,
  processProfileResponse,
  profileUrlFor,
  requestProfile,
} from "./profile.ts";

const CLIENT = "amzn1.application-oa2-client.profiletest";
const USER = "amzn1.account.PROFILETESTUSER0000000000001";

async function tokenFor(scopes: string[]) {
  const clock = new FakeClock();
  const server = startAuthServer({ clock, clients: [{ clientId: CLIENT, enabledScopes: scopes }] });
  const form = (o: Record<string, string>) => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(o).toString(),
  });
  const pair = await (await fetch(
    server.lwa.codepairUrl,
    form({
      response_type: "device_code",
      client_id: CLIENT,
      scope: scopes.join(" "),
      scope_data: JSON.stringify({
        "alexa:all": { productID: "p", productInstanceAttributes: { deviceSerialNumber: "s" } },
      }),
    }),
  )).json();
  server.state.approve(pair.user_code, USER);
  const tok = await (await fetch(
    server.lwa.tokenUrl,
    form({
      grant_type: "device_code",
      device_code: pair.device_code,
      user_code: pair.user_code,
    }),
  )).json();
  return { server, clock, accessToken: tok.access_token as string };
}

test("requestProfile() and processProfileResponse() read the user id with profile:user_id", async () => {
  const { server, clock, accessToken } = await tokenFor(["alexa:all", "profile:user_id"]);
  try {
    assert.is(profileUrlFor(server.lwa.tokenUrl), server.profileUrl);
    const res = await requestProfile({
      fetch,
      clock,
      url: server.profileUrl,
      accessToken,
      timeoutMs: 5000,
    });
    assert.is(processProfileResponse(res), USER);
  } finally {
    await server.close();
  }
});

test("processProfileResponse(): a token without the scope is 403, a bad one 401, no token in errors", async () => {
  const { server, clock, accessToken } = await tokenFor(["alexa:all"]);
  try {
    for (const [token, status] of [[accessToken, 403], ["Atza|nonsense", 401]] as const) {
      const res = await requestProfile({
        fetch,
        clock,
        url: server.profileUrl,
        accessToken: token,
        timeoutMs: 5000,
      });
      let e: unknown;
      try {
        processProfileResponse(res);
      } catch (x) {
        e = x;
      }
      assert.instance(e, OAuthError);
      assert.is((e as OAuthError).status, status);
      assert.not.ok(String(e).includes("Atza|"), "no token in the message");
      assert.not.ok(JSON.stringify(e).includes("Atza|"));
    }
  } finally {
    await server.close();
  }
});

test("canReadProfile() wants profile:user_id or profile", () => {
  assert.ok(canReadProfile(["alexa:all", "profile:user_id"]));
  assert.ok(canReadProfile(["profile"]));
  assert.not.ok(canReadProfile(["alexa:all", "profile:postal_code"]));
});

test.run();
