import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  DEVICE_CODE_GRANT_URN,
  DIALECT_NAMES,
  DIALECTS,
  isScopeToken,
  LWA_CODEPAIR_PATH,
  LWA_TOKEN_PATH,
  lwaScopeData,
  lwaUrls,
  REGION_HOSTS,
  REGIONS,
} from "./dialect.ts";
import { ERR_INVALID_ARG_VALUE } from "../text.ts";
import type { CodePair, DeviceIdentity } from "./types.ts";

const ID: DeviceIdentity = {
  clientId: "amzn1.application-oa2-client.abc",
  productId: "linkd_speaker",
  serial: "SN-0042.a_b",
};

const PAIR: CodePair = {
  deviceCode: "dev-code-123",
  userCode: "ABCDEF",
  verificationUri: "https://amazon.com/us/code",
  expiresIn: 600,
  interval: 5,
};

function throwsArg(fn: () => unknown, text: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, TypeError);
    assert.is((e as { code?: string }).code, ERR_INVALID_ARG_VALUE);
    assert.match((e as Error).message, text);
    return;
  }
  assert.unreachable("expected a TypeError");
}

test("DIALECTS.lwa.codePairForm() sends response_type, client_id, scope and scope_data", () => {
  const form = DIALECTS.lwa.codePairForm(ID, ["alexa:all", "music::library:read"]);
  assert.equal(Object.keys(form), ["response_type", "client_id", "scope", "scope_data"]);
  assert.is(form["response_type"], "device_code");
  assert.is(form["client_id"], ID.clientId);
  assert.is(form["scope"], "alexa:all music::library:read");
  // Exactly the JSON string PROTOCOL.md shows, byte for byte.
  assert.is(
    form["scope_data"],
    '{"alexa:all":{"productID":"linkd_speaker","productInstanceAttributes":{"deviceSerialNumber":"SN-0042.a_b"}}}',
  );
  assert.equal(JSON.parse(form["scope_data"]!), {
    "alexa:all": {
      productID: ID.productId,
      productInstanceAttributes: { deviceSerialNumber: ID.serial },
    },
  });
});

test("DIALECTS.lwa.codePairForm() sends no scope_data when no scope needs data", () => {
  const form = DIALECTS.lwa.codePairForm(ID, ["music::library:read", "profile"]);
  assert.equal(form, {
    response_type: "device_code",
    client_id: ID.clientId,
    scope: "music::library:read profile",
  });
  assert.is(lwaScopeData(ID, ["profile"]), undefined);
});

test("DIALECTS.lwa.codePairForm() drops repeated scopes and refuses bad ones", () => {
  const form = DIALECTS.lwa.codePairForm(ID, ["alexa:all", "profile", "alexa:all"]);
  assert.is(form["scope"], "alexa:all profile");
  throwsArg(() => DIALECTS.lwa.codePairForm(ID, []), "scopes must not be empty");
  throwsArg(() => DIALECTS.lwa.codePairForm(ID, ["two words"]), "not an RFC 6749 scope token");
  throwsArg(() => DIALECTS.lwa.codePairForm(ID, [""]), "not an RFC 6749 scope token");
  throwsArg(
    () => DIALECTS.lwa.codePairForm({ ...ID, productId: "" }, ["alexa:all"]),
    "identity.productId",
  );
  throwsArg(
    () => DIALECTS.lwa.codePairForm({ ...ID, serial: "" }, ["alexa:all"]),
    "identity.serial",
  );
});

test("DIALECTS.lwa.pollForm() sends the literal device_code grant and no client id", () => {
  const form = DIALECTS.lwa.pollForm(PAIR, ID.clientId);
  assert.equal(form, {
    grant_type: "device_code",
    device_code: "dev-code-123",
    user_code: "ABCDEF",
  });
  assert.not.ok("client_id" in form);
});

test("DIALECTS.lwa.refreshForm() sends refresh_token and client_id, no secret", () => {
  assert.equal(DIALECTS.lwa.refreshForm("Atzr|r", ID.clientId), {
    grant_type: "refresh_token",
    refresh_token: "Atzr|r",
    client_id: ID.clientId,
  });
  throwsArg(() => DIALECTS.lwa.refreshForm("", ID.clientId), "refreshToken");
  throwsArg(() => DIALECTS.lwa.refreshForm("Atzr|r", ""), "clientId");
});

test("DIALECTS.rfc8628 forms: client_id and scope; URN grant with client_id; refresh", () => {
  const d = DIALECTS.rfc8628;
  assert.equal(d.codePairForm(ID, ["openid", "music::catalog"]), {
    client_id: ID.clientId,
    scope: "openid music::catalog",
  });
  assert.equal(d.codePairForm(ID, []), { client_id: ID.clientId }, "scope is optional");
  assert.equal(d.pollForm(PAIR, ID.clientId), {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: "dev-code-123",
    client_id: ID.clientId,
  });
  assert.is(DEVICE_CODE_GRANT_URN, "urn:ietf:params:oauth:grant-type:device_code");
  assert.equal(d.refreshForm("rt", ID.clientId), {
    grant_type: "refresh_token",
    refresh_token: "rt",
    client_id: ID.clientId,
  });
  throwsArg(() => d.pollForm(PAIR, ""), "clientId");
  throwsArg(() => d.pollForm({ ...PAIR, deviceCode: "" }, ID.clientId), "pair.deviceCode");
});

test("DIALECTS names and default intervals", () => {
  assert.is(DIALECTS.lwa.name, "lwa");
  assert.is(DIALECTS.rfc8628.name, "rfc8628");
  assert.is(DIALECTS.lwa.defaultInterval, 5);
  assert.is(DIALECTS.rfc8628.defaultInterval, 5);
  assert.ok(Object.isFrozen(DIALECTS) && Object.isFrozen(DIALECTS.lwa));
  assert.equal(DIALECT_NAMES, ["lwa", "rfc8628"]);
});

test("isScopeToken() is RFC 6749's 1*NQCHAR: visible ASCII except quote and backslash", () => {
  for (const s of ["alexa:all", "profile", "music::library:read", "!#[]~", "a"]) {
    assert.ok(isScopeToken(s), s);
  }
  for (const s of ["", "two words", 'a"b', "a\\b", "a\tb", "a\u007fb", "é", 7, null]) {
    assert.not.ok(isScopeToken(s), JSON.stringify(s));
  }
});

test("lwaUrls() gives each region's code-pair and token URLs on its REGION_HOSTS host", () => {
  assert.equal(Object.fromEntries(REGIONS.map((r) => [r, lwaUrls(r)])), {
    na: {
      codepairUrl: "https://api.amazon.com/auth/O2/create/codepair",
      tokenUrl: "https://api.amazon.com/auth/O2/token",
    },
    eu: {
      codepairUrl: "https://api.amazon.co.uk/auth/O2/create/codepair",
      tokenUrl: "https://api.amazon.co.uk/auth/O2/token",
    },
    fe: {
      codepairUrl: "https://api.amazon.co.jp/auth/O2/create/codepair",
      tokenUrl: "https://api.amazon.co.jp/auth/O2/token",
    },
  });
  for (const r of REGIONS) assert.ok(lwaUrls(r).tokenUrl.includes(REGION_HOSTS[r]));
  assert.is(LWA_CODEPAIR_PATH, "/auth/O2/create/codepair");
  assert.is(LWA_TOKEN_PATH, "/auth/O2/token");
});

test.run();
