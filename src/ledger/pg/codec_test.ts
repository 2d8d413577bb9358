/**
 * The byte-level parts against hostile input: the framer refuses short, oversized, truncated
 * and unknown messages with PgError "08006" before reading a body; body readers refuse cut or
 * padded bodies and wrong counts; values read by type OID and refuse what is not their type;
 * URLs and passfiles read as libpq reads them, errors never echoing the URL.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Framer } from "./framer.ts";
import {
  readAuth,
  readDataRow,
  readErrorFields,
  readReady,
  readRowDescription,
} from "./backend.ts";
import { decodeBytea, decodeValue, encodeParam, OID } from "./values.ts";
import { PgError } from "./errors.ts";
import { parsePgUrl } from "./url.ts";
import { passwordFrom, readPassfile } from "./passfile.ts";
import { bindMessage, startupMessage } from "./frontend.ts";
import { pgMessage } from "../../../test/support/pg_wire.ts";

const enc = new TextEncoder();

/** A read function serving `bytes` in chunks of `chunk`, then the end of the stream. */
function reader(bytes: Uint8Array, chunk = 3): (b: Uint8Array) => Promise<number | null> {
  let off = 0;
  return (b) => {
    if (off >= bytes.length) return Promise.resolve(null);
    const n = Math.min(chunk, b.length, bytes.length - off);
    b.set(bytes.subarray(off, off + n));
    off += n;
    return Promise.resolve(n);
  };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    assert.instance(e, PgError, String(e));
    return (e as PgError).code;
  }
  return undefined;
}

test("Framer cuts any chunking into the same messages", async () => {
  const big = new Uint8Array(40_000).map((_, i) => i & 0xff);
  const stream = new Uint8Array([
    ...pgMessage("Z", [0x49]),
    ...pgMessage("D", big),
    ...pgMessage("C", [0x41, 0]),
  ]);
  for (const chunk of [1, 2, 7, 4096, 100_000]) {
    const f = new Framer(reader(stream, chunk), "h:1");
    assert.equal(await f.next(), { type: "Z", body: Uint8Array.of(0x49) });
    const d = await f.next();
    assert.is(d.type, "D");
    assert.equal(d.body, big);
    assert.is((await f.next()).type, "C");
    assert.is(await codeOf(f.next()), "08006");
  }
});

test("Framer refuses a short length, an oversized body, an unknown type and a cut message", async () => {
  const short = Uint8Array.of(0x5a, 0, 0, 0, 3);
  const huge = Uint8Array.of(0x44, 0x7f, 0xff, 0xff, 0xff); // 2 GiB: refused before reading
  const over = pgMessage("D", new Uint8Array(1025));
  const unknown = pgMessage("q", [1]);
  const cut = pgMessage("D", [1, 2, 3, 4]).subarray(0, 7);
  for (
    const [bytes, why] of [
      [short, "less than 4"],
      [huge, "bigger than"],
      [over, "bigger than 1024"],
      [unknown, "unknown message type"],
      [cut, "closed"],
      [new Uint8Array(0), "closed"],
    ] as const
  ) {
    const f = new Framer(reader(bytes), "h:1", 1024);
    try {
      await f.next();
      assert.unreachable(why);
    } catch (e) {
      assert.instance(e, PgError);
      assert.is((e as PgError).code, "08006");
      assert.match((e as Error).message, why);
    }
  }
});

test("Framer turns a failing read into 08006", async () => {
  const f = new Framer(() => Promise.reject(new Deno.errors.ConnectionReset("x")), "h:1");
  assert.is(await codeOf(f.next()), "08006");
});

test("body readers refuse cut, padded and out-of-range bodies", async () => {
  const col = [...enc.encode("id"), 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255];
  assert.equal(readRowDescription(Uint8Array.of(0, 1, ...col, 0, 0)), [{ name: "id", type: 23 }]);
  const cases: (() => unknown)[] = [
    () => readRowDescription(Uint8Array.of(0, 2, ...col, 0, 0)), // one column missing
    () => readRowDescription(Uint8Array.of(0, 1, ...col, 0, 1)), // binary format
    () => readRowDescription(Uint8Array.of(0, 1, ...col, 0, 0, 9)), // left over
    () => readRowDescription(Uint8Array.of(0xff, 0xff)), // -1 columns
    () => readRowDescription(Uint8Array.of(0x7f, 0xff)), // too many columns
    () => readDataRow(Uint8Array.of(0, 1, 0, 0, 0, 5, 1, 2), 1), // value cut
    () => readDataRow(Uint8Array.of(0, 1, 0xff, 0xff, 0xff, 0xfe), 1), // length -2
    () => readDataRow(Uint8Array.of(0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 1),
    () => readErrorFields(Uint8Array.of(0x43, 0x32)), // string without end
    () => readErrorFields(Uint8Array.of(0x4d, 0xff, 0, 0)), // not UTF-8
    () => readReady(Uint8Array.of(0x58)),
    () => readReady(Uint8Array.of(0x49, 0)),
    () => readAuth(Uint8Array.of(0, 0, 0)),
    () => readAuth(Uint8Array.of(0, 0, 0, 5, 1, 2)), // md5 salt cut
    () => readAuth(Uint8Array.of(0, 0, 0, 0, 1)), // ok with bytes left over
  ];
  for (const [i, c] of cases.entries()) assert.is(await codeOf(c), "08006", `case ${i}`);
  assert.equal(readDataRow(Uint8Array.of(0, 1, 0xff, 0xff, 0xff, 0xff), 1), [null]);
});

test("decodeValue() reads by type OID and refuses what is not its type", async () => {
  const t = (s: string) => enc.encode(s);
  assert.is(decodeValue(t("t"), OID.bool), true);
  assert.is(decodeValue(t("f"), OID.bool), false);
  assert.is(decodeValue(t("-32768"), OID.int2), -32768);
  assert.is(decodeValue(t("4294967295"), OID.oid), 4294967295);
  assert.is(decodeValue(t("-9223372036854775808"), OID.int8), -9223372036854775808n);
  assert.equal(decodeValue(t("\\x00ff7A"), OID.bytea), Uint8Array.of(0, 255, 0x7a));
  assert.is(decodeValue(t("1.5"), 701), "1.5");
  assert.is(decodeValue(null, OID.int4), null);
  assert.equal(decodeBytea(t("a\\\\b\\000\\377")), Uint8Array.of(0x61, 0x5c, 0x62, 0, 255));
  for (
    const [v, oid] of [
      ["yes", OID.bool],
      ["1e3", OID.int4],
      ["12a", OID.int8],
      ["\\x0", OID.bytea],
      [
        "\\xzz",
        OID.bytea,
      ],
      ["\\9", OID.bytea],
      ["", OID.int4],
    ] as const
  ) {
    assert.is(await codeOf(() => decodeValue(t(v), oid)), "08006", v);
  }
  assert.is(await codeOf(() => decodeValue(Uint8Array.of(0xc3), 25)), "08006");
});

test("encodeParam() sends bytes as binary bytea, the rest as text, and refuses the rest", () => {
  const d = new TextDecoder();
  assert.equal(encodeParam(Uint8Array.of(1), 1), {
    binary: true,
    bytes: Uint8Array.of(1),
    type: 17,
  });
  assert.equal(encodeParam(null, 1), { binary: false, bytes: null, type: 0 });
  assert.is(d.decode(encodeParam(2n ** 63n - 1n, 1).bytes!), "9223372036854775807");
  assert.is(d.decode(encodeParam(false, 1).bytes!), "false");
  assert.is(d.decode(encodeParam(-1.5, 1).bytes!), "-1.5");
  for (const bad of ["a\0b", undefined, {}, [1]]) {
    try {
      encodeParam(bad as never, 3);
      assert.unreachable();
    } catch (e) {
      assert.instance(e, TypeError);
      assert.is((e as { code?: string }).code, "ERR_INVALID_ARG_VALUE");
      assert.match((e as Error).message, "$3");
    }
  }
  // Bind: two format codes, two values (the second NULL), zero result formats (all text).
  const b = bindMessage([{ binary: true, bytes: Uint8Array.of(9) }, {
    binary: false,
    bytes: null,
  }]);
  assert.equal([...b.subarray(5)], [
    0,
    0,
    0,
    2,
    0,
    1,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    1,
    9,
    255,
    255,
    255,
    255,
    0,
    0,
  ]);
  assert.equal([...startupMessage({ user: "u" }).subarray(0, 8)], [0, 0, 0, 16, 0, 3, 0, 0]);
});

test("parsePgUrl() reads every form and never echoes the URL", () => {
  const u = parsePgUrl(
    "postgres://li%40nk:p%3Aw%2Fd@db.plant.example:6543/ledger?sslmode=require&connect_timeout=5",
  );
  assert.equal(
    [u.user, u.password, u.host, u.port, u.database, u.tls, u.connectTimeoutS],
    ["li@nk", "p:w/d", "db.plant.example", 6543, "ledger", true, 5],
  );
  const v6 = parsePgUrl("postgresql://u@[::1]/d");
  assert.equal([v6.host, v6.port, v6.password, v6.tls], ["::1", 5432, undefined, false]);
  assert.is(parsePgUrl("postgres://u:@127.0.0.1").database, "u");
  assert.is(parsePgUrl("postgres://u:@127.0.0.1").password, "");
  assert.is(parsePgUrl("postgres://u@h?passfile=%2Ftmp%2Fp").passfile, "/tmp/p");
  const secret = "S3cr%ZZet";
  for (
    const bad of [
      `mysql://u:${secret}@h/d`,
      `postgres://:${secret}@h/d`,
      `postgres://h/d`,
      `postgres://u:${secret}@h:0/d`,
      `postgres://u:${secret}@h:99999/d`,
      `postgres://u:${secret}@h/d`,
      `postgres://u:pw@h/d?sslmode=prefer${secret}`,
      `postgres://u:pw@h/d?host=${secret}`,
      `postgres://u:pw@h/d?connect_timeout=1s`,
      `postgres://u:pw@[fe80::1%25eth0]/d`,
      `postgres://u:pw@h_${secret}/d`,
    ]
  ) {
    try {
      parsePgUrl(bad);
      assert.unreachable(bad);
    } catch (e) {
      assert.instance(e, TypeError, bad);
      assert.not.ok((e as Error).message.includes(secret), (e as Error).message);
      assert.not.ok((e as Error).message.includes("pw@"), (e as Error).message);
    }
  }
});

test("passwordFrom() reads .pgpass lines as libpq; readPassfile() refuses a readable file", async () => {
  const text = "# comment\nother:*:*:*:no\n*:5432:ledger:li\\:nk:pa\\\\ss:word\n*:*:*:*:fallback\n";
  const key = { host: "h", port: 5432, database: "ledger", user: "li:nk" };
  assert.is(passwordFrom(text, key), "pa\\ss:word");
  assert.is(passwordFrom(text, { ...key, user: "x" }), "fallback");
  assert.is(passwordFrom("h:1:d", key), undefined);
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, text);
    await Deno.chmod(path, 0o600);
    assert.is(await readPassfile(path, key), "pa\\ss:word");
    await Deno.chmod(path, 0o640);
    assert.is(await codeOf(readPassfile(path, key)), "28000");
  } finally {
    await Deno.remove(path);
  }
  assert.is(await codeOf(readPassfile("/nonexistent/pgpass", key)), "28000");
  // A FIFO is refused without being opened (opening one waits for a writer).
  const dir = await Deno.makeTempDir();
  try {
    const made = await new Deno.Command("mkfifo", { args: ["-m", "600", `${dir}/fifo`] }).output();
    assert.ok(made.success);
    assert.is(await codeOf(readPassfile(`${dir}/fifo`, key)), "28000");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test.run();
