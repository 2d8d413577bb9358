/**
 * PostgreSQL wire messages written by hand for the client's tests (independent of the client's
 * own encoder, src/ledger/pg/frontend.ts): a type byte, an Int32 length that counts itself, the
 * body.
 */

/** One backend (or frontend) message of `type` with `body`. */
export function pgMessage(type: string, body: number[] | Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}
