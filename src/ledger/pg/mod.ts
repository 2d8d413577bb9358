/**
 * linkd's own PostgreSQL client (frontend/backend protocol 3.0), for the plant ledger: what the
 * ledger imports. See client.ts for the behaviour, errors.ts for the codes, url.ts for the URL.
 */
export { connectPg, type ConnectPgOptions, type PgClient, type PgResult } from "./client.ts";
export { PgError } from "./errors.ts";
export type { PgValue } from "./values.ts";
