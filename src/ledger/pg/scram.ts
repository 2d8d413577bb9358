/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, without channel binding (gs2
 * header `n,,`), in three pure steps: the client-first message, the client-final message with
 * its proof (and the server signature to expect), and the check of the server-final message. A
 * server whose signature is wrong is refused (PgError "28000"): it does not know the password's
 * verifier, so it is not the server the URL names. HMAC, PBKDF2 and SHA-256 are WebCrypto's.
 *
 * The password is prepared as SASLprep (RFC 4013) asks for the common cases (non-ASCII spaces to
 * space, "mapped to nothing" removed, NFKC); when the result holds a prohibited character the
 * raw password is used, as PostgreSQL does. The server's iteration count is bounded (a hostile
 * server could otherwise make the client spin): at most MAX_ITERATIONS.
 */
import { BAD_AUTHORIZATION, PgError } from "./errors.ts";
import { protocolError } from "./backend.ts";

export const MECHANISM = "SCRAM-SHA-256";
export const MAX_ITERATIONS = 1_000_000;
const GS2 = "n,,";

const enc = new TextEncoder();

export function base64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

function unbase64(s: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw protocolError(`the SCRAM ${what} is not base64`);
  }
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** A fresh client nonce: 18 random bytes, base64 (printable, no comma). */
export function newNonce(): string {
  return base64(crypto.getRandomValues(new Uint8Array(18)));
}

export interface ClientFirst {
  /** The whole message, gs2 header included, for SASLInitialResponse. */
  readonly message: string;
  /** Without the gs2 header: part of the AuthMessage. */
  readonly bare: string;
  readonly nonce: string;
}

/** PostgreSQL ignores the SCRAM user name (it uses the startup one): `user` is "" there. */
export function clientFirst(nonce: string, user = ""): ClientFirst {
  const name = user.replaceAll("=", "=3D").replaceAll(",", "=2C");
  const bare = `n=${name},r=${nonce}`;
  return { message: GS2 + bare, bare, nonce };
}

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;
const TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g;
// deno-lint-ignore no-control-regex
const PROHIBITED = /[\u0000-\u001f\u007f-\u009f\ue000-\uf8ff\ufff9-\ufffd\ud800-\udfff]/;

/** SASLprep for the cases that occur; the raw password when the prepared one is prohibited. */
export function saslPrep(password: string): string {
  if (/^[\u0020-\u007e]*$/.test(password)) return password;
  const p = password.replace(NON_ASCII_SPACE, " ").replace(TO_NOTHING, "").normalize("NFKC");
  return p === "" || PROHIBITED.test(p) ? password : p;
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

async function pbkdf2(password: string, salt: Uint8Array, iterations: number) {
  const k = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
      k,
      256,
    ),
  );
}

export interface ClientFinal {
  /** For SASLResponse. */
  readonly message: string;
  /** What the server-final message must carry. */
  readonly serverSignature: Uint8Array;
}

/** Reads the server-first message and answers it with the proof of `password`. */
export async function clientFinal(
  first: ClientFirst,
  serverFirst: string,
  password: string,
): Promise<ClientFinal> {
  const attrs = serverFirst.split(",");
  const [r, s, i] = attrs;
  if (attrs.length !== 3 || !r?.startsWith("r=") || !s?.startsWith("s=") || !i?.startsWith("i=")) {
    throw protocolError("the SCRAM server-first message is not r=...,s=...,i=...");
  }
  const nonce = r.slice(2);
  if (!nonce.startsWith(first.nonce) || nonce.length <= first.nonce.length) {
    throw protocolError("the SCRAM server nonce does not extend the client's");
  }
  if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) {
    throw protocolError("the SCRAM nonce is not printable");
  }
  const salt = unbase64(s.slice(2), "salt");
  if (!/^[1-9][0-9]{0,9}$/.test(i.slice(2)) || Number(i.slice(2)) > MAX_ITERATIONS) {
    throw protocolError(`the SCRAM iteration count must be 1 to ${MAX_ITERATIONS}`);
  }
  const salted = await pbkdf2(saslPrep(password), salt, Number(i.slice(2)));
  const clientKey = await hmac(salted, enc.encode("Client Key"));
  const storedKey = await sha256(clientKey);
  const withoutProof = `c=${btoa(GS2)},r=${nonce}`;
  const authMessage = enc.encode(`${first.bare},${serverFirst},${withoutProof}`);
  const clientSignature = await hmac(storedKey, authMessage);
  const proof = clientKey.map((b, k) => b ^ clientSignature[k]!);
  const serverKey = await hmac(salted, enc.encode("Server Key"));
  const serverSignature = await hmac(serverKey, authMessage);
  salted.fill(0);
  clientKey.fill(0);
  return { message: `${withoutProof},p=${base64(proof)}`, serverSignature };
}

/** Checks the server-final message: its `v=` must be the expected signature. */
export function checkServerFinal(serverFinal: string, final: ClientFinal, where: string): void {
  if (serverFinal.startsWith("e=")) {
    throw new PgError(
      BAD_AUTHORIZATION,
      `Cannot authenticate to the PostgreSQL server ${where}: SCRAM error ${
        JSON.stringify(serverFinal.slice(2, 80))
      }`,
    );
  }
  const v = /^v=([^,]*)(?:,.*)?$/.exec(serverFinal);
  if (v === null) throw protocolError("the SCRAM server-final message has no v=");
  const got = unbase64(v[1]!, "server signature");
  let diff = got.length ^ final.serverSignature.length;
  for (let k = 0; k < final.serverSignature.length; k++) {
    diff |= (got[k] ?? 0) ^ final.serverSignature[k]!;
  }
  if (diff !== 0) {
    throw new PgError(
      BAD_AUTHORIZATION,
      `Cannot authenticate to the PostgreSQL server ${where}: its SCRAM signature is wrong, ` +
        "so it does not know this user's password; check that the URL names the right server",
    );
  }
}
