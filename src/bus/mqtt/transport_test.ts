/**
 * Transports: broker URLs, and the TCP write path against a connection that writes a few bytes
 * at a time, slowly: every byte goes out, writes never interleave, a failure is sticky.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prng } from "../../../test/support/random.ts";
import { type ByteConn, connTransport, parseBrokerUrl } from "./transport.ts";
import { realDelay } from "../../../test/support/mqtt.ts";

test("parseBrokerUrl() knows the four schemes and their default ports", () => {
  const cases: [string, string, number, string][] = [
    ["mqtt://broker.local", "mqtt", 1883, ""],
    ["mqtts://broker.local", "mqtts", 8883, ""],
    ["ws://broker.local", "ws", 80, "ws://broker.local/"],
    ["wss://broker.local/mqtt?x=1", "wss", 443, "wss://broker.local/mqtt?x=1"],
    ["mqtt://127.0.0.1:1884", "mqtt", 1884, ""],
    ["ws://127.0.0.1:9001/mqtt", "ws", 9001, "ws://127.0.0.1:9001/mqtt"],
  ];
  for (const [url, scheme, port, wsUrl] of cases) {
    const ep = parseBrokerUrl(url);
    assert.is(ep.scheme, scheme, url);
    assert.is(ep.port, port, url);
    assert.is(ep.url, wsUrl, url);
  }
  const v6 = parseBrokerUrl("mqtt://[::1]:1883");
  assert.is(v6.hostname, "::1");
  assert.is(v6.display, "[::1]:1883");
});

test("parseBrokerUrl() refuses other schemes and credentials, without echoing the URL", () => {
  for (
    const url of ["http://h", "tcp://h:1", "not a url", "mqtt://user:s3cr3t@h", "mqtt://:s3cr3t@h"]
  ) {
    try {
      parseBrokerUrl(url);
      assert.unreachable(url);
    } catch (e) {
      assert.instance(e, TypeError, url);
      assert.not.ok((e as Error).message.includes("s3cr3t"), (e as Error).message);
      assert.is((e as { code?: string }).code, "ERR_INVALID_ARG_VALUE");
    }
  }
});

/** A connection that writes at most `most` bytes per call, after a random short delay. */
class TrickleConn implements ByteConn {
  readonly written: number[] = [];
  calls = 0;
  failAfter = Infinity;
  writeClosed = false;
  readonly #rand: () => number;
  #readers: ((n: number | null) => void)[] = [];

  constructor(readonly most: number, seed: number) {
    this.#rand = prng(seed);
  }

  async write(p: Uint8Array): Promise<number> {
    this.calls++;
    await realDelay(this.#rand() < 0.3 ? 1 : 0);
    if (this.writeClosed) throw new Error("write after closeWrite");
    if (this.written.length >= this.failAfter) throw new Error("Broken pipe (os error 32)");
    const n = Math.min(p.length, 1 + Math.floor(this.#rand() * this.most));
    this.written.push(...p.subarray(0, n));
    return n;
  }

  read(_p: Uint8Array): Promise<number | null> {
    return new Promise((r) => this.#readers.push(r));
  }

  closeWrite(): Promise<void> {
    this.writeClosed = true;
    return Promise.resolve();
  }

  close(): void {
    for (const r of this.#readers.splice(0)) r(null);
  }
}

test("connTransport().write() finishes short writes and never interleaves packets", async () => {
  const conn = new TrickleConn(3, 7);
  const t = connTransport(conn);
  const packets = Array.from(
    { length: 40 },
    (_, i) => new Uint8Array(1 + ((i * 7) % 23)).fill(i + 1),
  );
  // All at once, without waiting: the transport must queue them.
  await Promise.all(packets.map((p) => t.write(p)));
  const expected = packets.flatMap((p) => [...p]);
  assert.equal(conn.written, expected);
  assert.ok(conn.calls > packets.length, `${conn.calls} write calls`);
  await t.closeWrite();
  assert.ok(conn.writeClosed);
  t.close();
});

test("connTransport().write() rejects once the connection failed, and keeps rejecting", async () => {
  const conn = new TrickleConn(2, 9);
  conn.failAfter = 10;
  const t = connTransport(conn);
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => t.write(new Uint8Array(8).fill(1))),
  );
  assert.is(results[0]!.status, "fulfilled");
  for (const r of results.slice(1)) assert.is(r.status, "rejected");
  await t.write(new Uint8Array(1)).then(
    () => assert.unreachable("wrote after a failure"),
    (e) => assert.match(String(e), "Broken pipe"),
  );
  t.close();
});

test("connTransport() reports the end of the stream once, after the data", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept();
  const t = connTransport(await Deno.connect({ hostname: "127.0.0.1", port }));
  const server = await accepted;
  const got: number[] = [];
  const ends: (Error | null)[] = [];
  const ended = new Promise<void>((resolve) => {
    t.start({
      data: (c) => got.push(...c),
      end: (e) => {
        ends.push(e);
        resolve();
      },
    });
  });
  await server.write(new Uint8Array([1, 2, 3]));
  server.close();
  await ended;
  await realDelay(10);
  assert.equal(got, [1, 2, 3]);
  assert.equal(ends, [null]);
  listener.close();
});

test.run();
