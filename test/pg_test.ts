/**
 * src/ledger/pg against Debian's real PostgreSQL 15 (test/support/postgres.ts): SCRAM, md5,
 * cleartext and trust logins, TLS (sslmode=require with the test CA), a wrong password,
 * parameters of every kind back equal, a unique violation, concurrent queries on one client, a
 * backend killed mid-query, and no password in any error text. Skipped where PostgreSQL is not
 * installed (never in CI).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { havePostgres, type Postgres, startPostgres } from "./support/postgres.ts";
import { connectPg, type PgClient, PgError } from "../src/ledger/pg/mod.ts";
import { CERT_VALID, TEST_CA, TEST_KEY } from "./support/certs.ts";

const PASSWORD = "Pg-Secr3t:@/x%y 9e4";
const OTHER = { md5: "md5-Secr3t-71", plain: "plain-Secr3t-52" };

let pg: Postgres;
const open: PgClient[] = [];
const urlFor = (user: string, password: string, db = "postgres") =>
  `postgres://${encodeURIComponent(user)}:${
    encodeURIComponent(password)
  }@127.0.0.1:${pg.port}/${db}`;

function noSecret(e: unknown, ...secrets: string[]): void {
  const text = `${(e as Error).message} ${(e as PgError).detail ?? ""} ${
    String((e as Error).stack)
  }`;
  for (const s of secrets) {
    assert.not.ok(text.includes(s), `secret in error: ${text}`);
    assert.not.ok(text.includes(encodeURIComponent(s)), `encoded secret in error: ${text}`);
  }
}

async function rejects(p: Promise<unknown>): Promise<PgError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, PgError, String(e));
    return e as PgError;
  }
  throw new Error("expected a rejection");
}

// Skipped where PostgreSQL is missing, never in CI (scripts/setup.sh installs it there).
const available = havePostgres() || Deno.env.get("CI") !== undefined;
const run = available ? test : test.skip;

if (available) {
  test.before(async () => {
    pg = await startPostgres({
      password: PASSWORD,
      tls: { cert: CERT_VALID, key: TEST_KEY },
      hba: [
        "host all md5user 127.0.0.1/32 md5",
        "host all plainuser 127.0.0.1/32 password",
        "host all trustuser 127.0.0.1/32 trust",
      ],
    });
    await pg.psql(
      `SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD '${OTHER.md5}';` +
        `RESET password_encryption; CREATE ROLE plainuser LOGIN PASSWORD '${OTHER.plain}';` +
        "CREATE ROLE trustuser LOGIN;",
    );
  });
  test.after.each(async () => {
    for (const c of open.splice(0)) await c.close();
  });
  test.after(async () => {
    await pg?.stop();
  });
}

const connect = async (url = urlFor(pg.user, PASSWORD)) => {
  const c = await connectPg(url, { timeoutMs: 20_000 });
  open.push(c);
  return c;
};

run("connectPg() logs in with SCRAM-SHA-256 and runs a query", async () => {
  const c = await connect();
  const r = await c.query("SELECT current_user AS u, 1 + 1 AS two");
  assert.equal(r.rows, [{ u: pg.user, two: 2 }]);
  assert.is(r.command, "SELECT");
  assert.is(r.rowCount, 1);
  const log = await pg.log();
  assert.not.ok(log.includes(PASSWORD));
});

run("connectPg() with a wrong password is PgError 28P01 without the password", async () => {
  const wrong = "Wr0ng-pass:@/word";
  const e = await rejects(connectPg(urlFor(pg.user, wrong)));
  assert.is(e.code, "28P01");
  noSecret(e, wrong, PASSWORD);
});

run("connectPg() logs in with md5, cleartext password and trust", async () => {
  for (const [user, pw] of [["md5user", OTHER.md5], ["plainuser", OTHER.plain]] as const) {
    const c = await connect(urlFor(user, pw));
    assert.equal((await c.query("SELECT current_user AS u")).rows, [{ u: user }]);
    const e = await rejects(connectPg(urlFor(user, "nope-nope")));
    assert.is(e.code, "28P01");
  }
  const t = await connect(`postgresql://trustuser@127.0.0.1:${pg.port}/postgres`);
  assert.equal((await t.query("SELECT 'ok' AS v", [])).rows, [{ v: "ok" }]);
});

run("connectPg() with sslmode=require talks TLS and checks the certificate", async () => {
  const ca = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(ca, TEST_CA);
    const c = await connect(
      `${urlFor(pg.user, PASSWORD)}?sslmode=require&sslrootcert=${encodeURIComponent(ca)}`,
    );
    const r = await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    assert.equal(r.rows, [{ ssl: true }]);
    // Without the test CA the certificate is not trusted: refused before any password is sent.
    const e = await rejects(connectPg(`${urlFor(pg.user, PASSWORD)}?sslmode=require`));
    assert.is(e.code, "08001");
    noSecret(e, PASSWORD);
    // And without sslmode the same server is plain TCP.
    const plain = await connect();
    const p = await plain.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    assert.equal(p.rows, [{ ssl: false }]);
  } finally {
    await Deno.remove(ca);
  }
});

run("query() sends parameters of every kind and reads them back equal", async () => {
  const c = await connect();
  await c.query(
    "CREATE TABLE t (id int4 PRIMARY KEY, big int8, flag bool, blob bytea, name text, small int2)",
  );
  const blob = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
  const big = 9_007_199_254_740_993n;
  const ins = await c.query(
    "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)",
    [1, big, true, blob, "zoë \\ 'x'", -3, 2, null, false, new Uint8Array(0), null, null],
  );
  assert.is(ins.command, "INSERT");
  assert.is(ins.rowCount, 2);
  const r = await c.query("SELECT * FROM t WHERE id >= $1 ORDER BY id", [1]);
  assert.equal(r.rows, [
    { id: 1, big, flag: true, blob, name: "zoë \\ 'x'", small: -3 },
    { id: 2, big: null, flag: false, blob: new Uint8Array(0), name: null, small: null },
  ]);
  assert.instance(r.rows[0]!.blob, Uint8Array);
  // The simple protocol reads the same types.
  assert.equal((await c.query("SELECT big, flag FROM t WHERE id = 1")).rows, [{
    big,
    flag: true,
  }]);
});

run("query() without params runs a batch and gives the last statement's result", async () => {
  const c = await connect();
  const r = await c.query("SELECT 1 AS a; SELECT 2 AS b, NULL::text AS c");
  assert.equal(r.rows, [{ b: 2, c: null }]);
  const d = await c.query("SELECT 1 AS a; CREATE TEMP TABLE x (a int)");
  assert.equal([d.rows, d.command, d.rowCount], [[], "CREATE TABLE", 0]);
  const e = await c.query("");
  assert.equal([e.rows, e.command], [[], ""]);
});

run("query() turns a unique violation into PgError 23505 and the client stays usable", async () => {
  const c = await connect();
  await c.query("CREATE TABLE u (serial text UNIQUE)");
  await c.query("INSERT INTO u VALUES ($1)", ["S-1"]);
  const e = await rejects(c.query("INSERT INTO u VALUES ($1)", ["S-1"]));
  assert.is(e.code, "23505");
  assert.is(e.constraint, "u_serial_key");
  assert.ok(e.detail?.includes("S-1"));
  assert.is((await c.query("SELECT count(*)::int4 AS n FROM u")).rows[0]!.n, 1);
});

run("query() runs concurrent queries on one client one at a time", async () => {
  const c = await connect();
  await c.query("CREATE TABLE seq (n int4)");
  const all = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        i % 5 === 4
          ? c.query("SELECT 1/0").then(() => "no error", (e: PgError) => e.code)
          : c.query("INSERT INTO seq VALUES ($1) RETURNING n", [i]).then((r) => r.rows[0]!.n),
    ),
  );
  assert.equal(all, Array.from({ length: 20 }, (_, i) => (i % 5 === 4 ? "22012" : i)));
  const r = await c.query("SELECT n FROM seq");
  assert.is(r.rows.length, 16);
});

run("errors never hold the password, even when the server echoes it", async () => {
  const c = await connect();
  const e = await rejects(c.query(`SELECT '${PASSWORD}'::int4`));
  assert.is(e.code, "22P02");
  noSecret(e, PASSWORD);
  const e2 = await rejects(
    connectPg(`postgres://${pg.user}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${pg.port}/no_db`),
  );
  assert.is(e2.code, "3D000");
  noSecret(e2, PASSWORD);
});

run("query() fails with PgError 08006 when the server is killed mid-query", async () => {
  // Last: PostgreSQL restarts every backend (crash recovery) after one is killed.
  const c = await connect();
  const pid = (await c.query("SELECT pg_backend_pid() AS pid")).rows[0]!.pid as number;
  const q = c.query("SELECT pg_sleep(30)");
  await new Promise((r) => setTimeout(r, 200));
  Deno.kill(pid, "SIGKILL");
  const e = await rejects(q);
  assert.is(e.code, "08006");
  const again = await rejects(c.query("SELECT 1"));
  assert.is(again.code, "08003");
  noSecret(e, PASSWORD);
});

test.run();
