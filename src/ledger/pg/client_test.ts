/**
 * connectPg against a scripted fake server on loopback: whatever the server does (garbage, a
 * close, silence, a skipped or forged SCRAM step, a huge message) the client fails with a
 * coded PgError in bounded time and never crashes; refused connections are "08001"; close()
 * is idempotent and later queries are "08003".
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connectPg } from "./client.ts";
import { PgError } from "./errors.ts";
import { pgMessage } from "../../../test/support/pg_wire.ts";

type Script = (conn: Deno.Conn, read: () => Promise<Uint8Array>) => Promise<void>;
const i32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const AUTH_OK = pgMessage("R", i32(0));
const READY = pgMessage("Z", [0x49]);
const enc = new TextEncoder();

/** Serves one connection with `script`; resolves with the server's port and a stop. */
function fakeServer(script: Script) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of l) {
      conns.push(conn);
      const buf = new Uint8Array(65536);
      const read = async () => {
        const n = await conn.read(buf);
        return buf.slice(0, n ?? 0);
      };
      script(conn, read).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    async stop() {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await done;
    },
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, PgError, String(e));
    assert.not.ok((e as Error).message.includes("hunter2"), (e as Error).message);
    return (e as PgError).code;
  }
  return "resolved";
}

const url = (port: number) => `postgres://u:hunter2@127.0.0.1:${port}/d`;

async function withServer(script: Script, f: (port: number) => Promise<void>) {
  const s = fakeServer(script);
  try {
    await f(s.port);
  } finally {
    await s.stop();
  }
}

test("connectPg() fails with 08006 on garbage, a close, or a huge message at startup", async () => {
  const replies = [
    enc.encode("HTTP/1.1 400 Bad Request\r\n\r\n"),
    new Uint8Array(0),
    Uint8Array.of(0x52, 0x7f, 0xff, 0xff, 0xff),
    pgMessage("R", i32(0)).subarray(0, 7),
    pgMessage("T", [0, 0]), // a row description during startup
  ];
  for (const reply of replies) {
    await withServer(async (conn, read) => {
      await read();
      if (reply.length) await conn.write(reply);
      conn.close();
    }, async (port) => {
      assert.is(await codeOf(connectPg(url(port), { timeoutMs: 5000 })), "08006");
    });
  }
});

test("connectPg() and query() fail with 08006 when the server goes silent", async () => {
  await withServer(async (_conn, read) => {
    await read(); // never answers
    await new Promise(() => {});
  }, async (port) => {
    assert.is(await codeOf(connectPg(url(port), { timeoutMs: 300 })), "08006");
  });
  await withServer(async (conn, read) => {
    await read();
    await conn.write(new Uint8Array([...AUTH_OK, ...READY]));
    await read(); // the query: never answered
  }, async (port) => {
    const c = await connectPg(url(port), { timeoutMs: 300 });
    assert.is(await codeOf(c.query("SELECT 1")), "08006");
    assert.is(await codeOf(c.query("SELECT 1")), "08003");
    await c.close();
    await c.close();
  });
});

test("connectPg() refuses a server that skips or forges the last SCRAM step", async () => {
  for (const forge of [false, true]) {
    await withServer(async (conn, read) => {
      await read();
      await conn.write(pgMessage("R", [...i32(10), ...enc.encode("SCRAM-SHA-256\0\0")]));
      const first = new TextDecoder().decode(await read());
      const nonce = /r=([^,\0]+)/.exec(first)![1];
      const serverFirst = `r=${nonce}srv,s=${btoa("salt")},i=4096`;
      await conn.write(pgMessage("R", [...i32(11), ...enc.encode(serverFirst)]));
      await read();
      if (forge) {
        await conn.write(pgMessage("R", [...i32(12), ...enc.encode(`v=${btoa("x".repeat(32))}`)]));
      }
      await conn.write(new Uint8Array([...AUTH_OK, ...READY]));
    }, async (port) => {
      assert.is(await codeOf(connectPg(url(port), { timeoutMs: 5000 })), "28000");
    });
  }
});

test("connectPg() refuses a method it does not do, a server without TLS, and no server", async () => {
  await withServer(async (conn, read) => {
    await read();
    await conn.write(pgMessage("R", i32(7))); // GSSAPI
  }, async (port) => {
    assert.is(await codeOf(connectPg(url(port))), "0A000");
  });
  for (const [answer, code] of [[0x4e, "0A000"], [0x45, "08006"]] as const) {
    await withServer(async (conn, read) => {
      await read(); // SSLRequest
      await conn.write(Uint8Array.of(answer));
    }, async (port) => {
      assert.is(await codeOf(connectPg(`${url(port)}?sslmode=require`)), code);
    });
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  assert.is(await codeOf(connectPg(url(port))), "08001");
  const refused =
    (() => Promise.reject(new Deno.errors.ConnectionRefused())) as unknown as typeof Deno.connect;
  assert.is(await codeOf(connectPg("postgres://u@[::1]:1/d", { connect: refused })), "08001");
});

test("query() bounds a result's rows and stays usable; an aborted signal closes the client", async () => {
  const col = [...enc.encode("n"), 0, ...i32(0), 0, 0, ...i32(23), 0, 4, ...i32(-1), 0, 0];
  const row = pgMessage("D", [0, 1, ...i32(1), 0x37]);
  await withServer(async (conn, read) => {
    await read();
    await conn.write(new Uint8Array([...AUTH_OK, ...READY]));
    for (;;) {
      if ((await read()).length === 0) return;
      const rows = Array.from({ length: 5 }, () => [...row]).flat();
      await conn.write(
        new Uint8Array([
          ...pgMessage("T", [0, 1, ...col]),
          ...rows,
          ...pgMessage("C", [...enc.encode("SELECT 5"), 0]),
          ...READY,
        ]),
      );
    }
  }, async (port) => {
    const gone = new AbortController();
    gone.abort();
    assert.is(await codeOf(connectPg(url(port), { signal: gone.signal })), "57014");
    const ac = new AbortController();
    const c = await connectPg(url(port), { maxRows: 3, signal: ac.signal });
    assert.is(await codeOf(c.query("SELECT n")), "54000");
    const c2 = await connectPg(url(port));
    assert.equal(await c2.query("SELECT n"), {
      rows: Array(5).fill({ n: 7 }),
      command: "SELECT",
      rowCount: 5,
    });
    await c2.close();
    ac.abort();
    assert.is(await codeOf(c.query("SELECT n")), "08003");
    await c.close();
  });
});

test.run();
