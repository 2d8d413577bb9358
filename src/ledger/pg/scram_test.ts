/**
 * SCRAM-SHA-256 against the RFC 7677 section 3 example (user "user", password "pencil"): the
 * client-final message and the server signature are the RFC's; a wrong signature or an `e=` is
 * refused with PgError "28000"; md5 against RFC 1321 vectors and a hash PostgreSQL computes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkServerFinal, clientFinal, clientFirst, MAX_ITERATIONS, saslPrep } from "./scram.ts";
import { PgError } from "./errors.ts";
import { md5, md5Password } from "./md5.ts";

const NONCE = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST =
  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL =
  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    assert.instance(e, PgError);
    return (e as PgError).code;
  }
  return undefined;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, PgError);
    return (e as PgError).code;
  }
  return undefined;
}

test("clientFinal() gives RFC 7677's proof and server signature", async () => {
  const first = clientFirst(NONCE, "user");
  assert.is(first.message, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const final = await clientFinal(first, SERVER_FIRST, "pencil");
  assert.is(final.message, CLIENT_FINAL);
  assert.is(code(() => checkServerFinal(SERVER_FINAL, final, "h:1")), undefined);
});

test("checkServerFinal() refuses a wrong signature and a SCRAM error with 28000", async () => {
  const final = await clientFinal(clientFirst(NONCE, "user"), SERVER_FIRST, "pencil");
  const wrong = SERVER_FINAL.replace("6rri", "6rrj");
  assert.is(code(() => checkServerFinal(wrong, final, "h:1")), "28000");
  assert.is(code(() => checkServerFinal("v=", final, "h:1")), "28000");
  assert.is(code(() => checkServerFinal("e=invalid-proof", final, "h:1")), "28000");
  assert.is(code(() => checkServerFinal("x=1", final, "h:1")), "08006");
  assert.is(code(() => checkServerFinal("v=***", final, "h:1")), "08006");
});

test("clientFinal() refuses a hostile server-first message with 08006", async () => {
  const first = clientFirst(NONCE);
  for (
    const bad of [
      "",
      "r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // nonce not ours
      `r=${NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, // not extended
      `r=${NONCE}x,s=!!!,i=4096`,
      `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`,
      `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=${MAX_ITERATIONS + 1}`,
      `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,m=ext`,
    ]
  ) {
    assert.is(await codeOf(clientFinal(first, bad, "pencil")), "08006", bad);
  }
});

test("saslPrep() keeps ASCII, maps non-ASCII spaces and normalizes", () => {
  assert.is(saslPrep("pencil"), "pencil");
  assert.is(saslPrep("a\u00a0b"), "a b");
  assert.is(saslPrep("I\u00adX"), "IX");
  assert.is(saslPrep("\u2168"), "IX");
  assert.is(saslPrep("a\u0007b"), "a\u0007b"); // prohibited: raw, as PostgreSQL
});

test("md5() matches RFC 1321 and md5Password() matches PostgreSQL", () => {
  const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const enc = new TextEncoder();
  assert.is(hex(md5(enc.encode(""))), "d41d8cd98f00b204e9800998ecf8427e");
  assert.is(hex(md5(enc.encode("message digest"))), "f96b697d7cb7938d525a2f31aaf161d0");
  assert.is(
    hex(md5(enc.encode("1234567890".repeat(8)))),
    "57edf4a22be3c955ac49da2e2107b67a",
  );
  // Python: "md5" + md5(md5("secret" + "linkd").hexdigest() + salt).hexdigest()
  assert.is(
    md5Password("linkd", "secret", new Uint8Array([1, 2, 3, 4])),
    "md53a0f92a417e16b684038e90f5a9170ef",
  );
});

test.run();
