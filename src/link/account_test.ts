/** The account record: what a profile read makes of it, and the fingerprint it keeps. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { provisionedVault } from "../../test/support/link.ts";
import { accountAfterRead, accountInfo } from "./account.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const C = "c".repeat(32);

test("accountAfterRead() keeps the account, or names the one it replaced", () => {
  assert.equal(accountAfterRead(null, A), { fingerprint: A, current: true });
  assert.equal(accountAfterRead({ fingerprint: A, current: false }, A), {
    fingerprint: A,
    current: true,
  });
  assert.equal(accountAfterRead({ fingerprint: A, current: false }, B), {
    fingerprint: B,
    previous: A,
    current: true,
  });
  assert.equal(accountAfterRead({ fingerprint: B, previous: A, current: false }, C), {
    fingerprint: C,
    previous: B,
    current: true,
  });
});

test("accountInfo() is known only while the record is the current link's", () => {
  assert.is(accountInfo(null), undefined);
  assert.is(accountInfo({ fingerprint: A, current: false }), undefined);
  assert.equal(accountInfo({ fingerprint: B, previous: A, current: true }), {
    fingerprint: B,
    previous: A,
  });
});

test("Vault.fingerprint() is stable on a device, differs across devices, hides the id", () => {
  const id = new TextEncoder().encode("amzn1.account.AAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  const one = provisionedVault("client", "SN-1");
  const two = provisionedVault("client", "SN-2");
  const f = one.fingerprint("account", id);
  assert.match(f, /^[0-9a-f]{32}$/);
  assert.is(one.fingerprint("account", id), f);
  assert.is.not(two.fingerprint("account", id), f, "unlinkable across devices");
  assert.is.not(one.fingerprint("other", id), f, "bound to its purpose");
});

test.run();
