import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeCbor } from "../cbor.ts";
import { throwsCode } from "../../test/support/assert.ts";
import {
  decodeTokenRecord,
  encodeTokenRecord,
  MAX_EXPIRES_IN_S,
  MAX_TIME_MS,
  type TokenRecord,
} from "./token.ts";

const RECORD: TokenRecord = {
  access_token: "Atza|access",
  refresh_token: "Atzr|refresh",
  token_type: "bearer",
  scopes: ["alexa:all"],
  expires_in: 3600,
  obtained_at: 1_700_000_000_000,
  expires_at: 1_700_003_600_000,
  client_id: "amzn1.application-oa2-client.x",
};

test("a token record round-trips", () => {
  assert.equal(decodeTokenRecord(encodeTokenRecord(RECORD)), RECORD);
});

test("times are bounded to the year 9999 and expires_in to ten years", () => {
  assert.is(MAX_TIME_MS, Date.UTC(9999, 11, 31, 23, 59, 59, 999));
  assert.is(MAX_EXPIRES_IN_S, 315_360_000);
  const edge = { ...RECORD, obtained_at: MAX_TIME_MS, expires_at: MAX_TIME_MS };
  assert.equal(decodeTokenRecord(encodeTokenRecord(edge)), edge);
  const longest = { ...RECORD, expires_in: MAX_EXPIRES_IN_S };
  assert.equal(decodeTokenRecord(encodeTokenRecord(longest)), longest);

  const tooLate = [MAX_TIME_MS + 1, 8.64e15 + 1, Number.MAX_SAFE_INTEGER];
  for (const field of ["expires_at", "obtained_at"] as const) {
    for (const v of tooLate) {
      const t = { ...RECORD, [field]: v };
      // Written by someone else (decode), or by linkd itself (encode): both refuse it.
      throwsCode(() => decodeTokenRecord(encodeCbor(t)), "STORE_CORRUPT", field);
      throwsCode(() => encodeTokenRecord(t), "STORE_CORRUPT", field);
    }
  }
  for (const v of [MAX_EXPIRES_IN_S + 1, Number.MAX_SAFE_INTEGER]) {
    const t = { ...RECORD, expires_in: v };
    throwsCode(() => decodeTokenRecord(encodeCbor(t)), "STORE_CORRUPT", "expires_in");
  }
});

test.run();
