/**
 * The startup exchange after the startup packet: the server asks for nothing (trust), a
 * cleartext password, an md5 hash, or SCRAM-SHA-256, and the client answers. Once SCRAM has
 * begun, "authentication ok" counts only after the server's signature was checked: a server
 * that skips the final SCRAM step is refused, since it never proved it knows the verifier.
 * Kerberos, GSSAPI, SSPI and SCRAM-SHA-256-PLUS only are not done (PgError "0A000").
 */
import { readAuth, readErrorFields } from "./backend.ts";
import { NOT_SUPPORTED, PgError, serverError } from "./errors.ts";
import { passwordMessage, saslInitialResponse, saslResponse } from "./frontend.ts";
import type { BackendMessage } from "./framer.ts";
import { md5Password } from "./md5.ts";
import {
  checkServerFinal,
  type ClientFinal,
  clientFinal,
  clientFirst,
  MECHANISM,
  newNonce,
} from "./scram.ts";
import { protocolError } from "./backend.ts";

export interface AuthIo {
  next(): Promise<BackendMessage>;
  write(b: Uint8Array): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs the exchange up to AuthenticationOk; resolves then, rejects with a PgError. */
export async function authenticate(
  io: AuthIo,
  user: string,
  password: string | undefined,
  where: string,
  nonce: () => string = newNonce,
): Promise<void> {
  const action = `connect to the PostgreSQL server ${where}`;
  const secrets = password === undefined ? [] : [password, encodeURIComponent(password)];
  const need = (): string => {
    if (password !== undefined) return password;
    throw new PgError(
      "28P01",
      `Cannot ${action}: it asks for a password and none was given; ` +
        "put it in the URL or a passfile",
    );
  };
  let scram: { first: ReturnType<typeof clientFirst>; final?: ClientFinal; done: boolean } | null =
    null;
  for (;;) {
    const m = await io.next();
    if (m.type === "E") throw serverError(readErrorFields(m.body), action, secrets);
    if (m.type === "N" || m.type === "v") continue; // a notice; a minor version we do not need
    if (m.type !== "R") throw protocolError(`message type ${m.type} came during authentication`);
    const req = readAuth(m.body);
    switch (req.kind) {
      case "ok":
        if (scram !== null && !scram.done) {
          throw new PgError(
            "28000",
            `Cannot ${action}: it skipped the last SCRAM step, so it never proved it knows ` +
              "the password; check that the URL names the right server",
          );
        }
        return;
      case "cleartext":
        if (scram !== null) throw protocolError("a password request came during SCRAM");
        await io.write(passwordMessage(need()));
        break;
      case "md5":
        if (scram !== null) throw protocolError("a password request came during SCRAM");
        await io.write(passwordMessage(md5Password(user, need(), req.salt)));
        break;
      case "sasl":
        if (scram !== null) throw protocolError("a second SASL request came");
        if (!req.mechanisms.includes(MECHANISM)) {
          throw new PgError(
            NOT_SUPPORTED,
            `Cannot ${action}: it offers SASL ${req.mechanisms.join(", ")} and linkd does ` +
              `${MECHANISM} only`,
          );
        }
        need();
        scram = { first: clientFirst(nonce()), done: false };
        await io.write(saslInitialResponse(MECHANISM, enc.encode(scram.first.message)));
        break;
      case "sasl-continue":
        if (scram === null || scram.final !== undefined) {
          throw protocolError("a SASL continuation came out of turn");
        }
        scram.final = await clientFinal(scram.first, dec.decode(req.data), need());
        await io.write(saslResponse(enc.encode(scram.final.message)));
        break;
      case "sasl-final":
        if (scram?.final === undefined || scram.done) {
          throw protocolError("a SASL final message came out of turn");
        }
        checkServerFinal(dec.decode(req.data), scram.final, where);
        scram.done = true;
        break;
      default:
        throw new PgError(
          NOT_SUPPORTED,
          `Cannot ${action}: it asks for authentication method ${req.code}, which linkd does ` +
            "not do; use scram-sha-256 in pg_hba.conf",
        );
    }
  }
}
