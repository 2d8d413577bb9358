/**
 * Test helpers for src/net: a scripted raw TCP server on 127.0.0.1 that writes crafted bytes,
 * and small waiting helpers that do not use the global `setTimeout`.
 */
import type { ReadFn } from "../../src/net/_reader.ts";
import { startTimer } from "../../src/timers.ts";

export const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
export const text = (b: Uint8Array): string => String.fromCharCode(...b);

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => startTimer(ms, resolve));
}

/** Resolves with `p`'s rejection; fails the test when it fulfils. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

export interface RawServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops listening, closes every connection and waits for the handlers. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 (port 0) and runs `handle` for each connection; the connection is closed
 * when `handle` returns or throws.
 */
export function rawServer(handle: (conn: Deno.TcpConn) => Promise<void>): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  let accepted = 0;
  const loop = (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.setNoDelay(true);
      conns.add(conn);
      tasks.add(
        handle(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed by the handler
          }
        }),
      );
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    async close() {
      listener.close();
      await loop;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await Promise.all(tasks);
    },
  };
}

/** Reads one request (head, then a Content-Length body) and returns it as latin1 text. */
export async function readRequest(conn: Deno.Conn): Promise<string> {
  let got = "";
  const buf = new Uint8Array(16 * 1024);
  for (;;) {
    const end = got.indexOf("\r\n\r\n");
    if (end !== -1) {
      const m = /\r\ncontent-length: *(\d+)/i.exec(got.slice(0, end));
      if (got.length >= end + 4 + Number(m?.[1] ?? 0)) return got;
    }
    const n = await conn.read(buf);
    if (n === null) return got;
    got += text(buf.subarray(0, n));
  }
}

/** True when `p` settles within `ms`, false otherwise (the timer is cancelled either way). */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let cancel = () => {};
  const late = new Promise<boolean>((resolve) => (cancel = startTimer(ms, () => resolve(false))));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    cancel();
  }
}

/** Waits until the peer closes `conn` (EOF or reset): true, or false after `ms`. */
export async function peerCloses(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(64 * 1024);
  const reading = (async () => {
    try {
      while ((await conn.read(buf)) !== null) {
        // drain
      }
    } catch {
      // reset: closed too
    }
    return true;
  })();
  return await settlesWithin(reading, ms);
}

/** Writes `parts` one by one, `gapMs` apart. */
export async function send(
  conn: Deno.Conn,
  parts: Array<string | Uint8Array>,
  gapMs = 0,
): Promise<void> {
  for (const [i, p] of parts.entries()) {
    if (i > 0 && gapMs > 0) await delay(gapMs);
    const bytes = typeof p === "string" ? latin1(p) : p;
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  }
}

/** A handler that reads the request, then writes `parts` (see `send`), then closes. */
export function reply(parts: Array<string | Uint8Array>, gapMs = 0) {
  return async (conn: Deno.Conn): Promise<void> => {
    await readRequest(conn);
    await send(conn, parts, gapMs);
  };
}

/** A read function that hands out `pieces` one per read (split further if the buffer is small). */
export function scripted(pieces: Uint8Array[]): ReadFn & { reads: number } {
  const queue = [...pieces];
  const read = (buf: Uint8Array): Promise<number | null> => {
    read.reads++;
    const p = queue.shift();
    if (p === undefined) return Promise.resolve(null);
    if (p.length > buf.length) queue.unshift(p.subarray(buf.length));
    const n = Math.min(p.length, buf.length);
    buf.set(p.subarray(0, n));
    return Promise.resolve(n);
  };
  read.reads = 0;
  return read;
}
