/** Http1Headers and Http1Response read as Headers and Response do, for what linkd reads. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Http1Headers, Http1Response } from "./_response.ts";
import { type BodyLink, Http1Body } from "./_body.ts";
import { framing, readHead } from "./_head.ts";
import { Reader } from "./_reader.ts";
import { latin1, scripted } from "../../test/support/net.ts";

const ORIGIN = "http://127.0.0.1:1";

test("Http1Headers: names case-insensitive, repeated fields joined, sorted as Headers sorts", () => {
  const fields: Array<[string, string]> = [
    ["X-B", "2"],
    ["Set-Cookie", "a=1"],
    ["x-a", "1"],
    ["set-cookie", "b=2"],
  ];
  const mine = new Http1Headers(fields);
  const theirs = new Headers();
  for (const [n, v] of fields) theirs.append(n, v);
  for (const name of ["x-a", "X-B", "SET-COOKIE", "missing"]) {
    assert.is(mine.get(name), theirs.get(name), name);
    assert.is(mine.has(name), theirs.has(name), name);
  }
  assert.equal([...mine].filter(([n]) => n !== "set-cookie"), [
    ...[...theirs].filter(([n]) => n !== "set-cookie"),
  ]);
  assert.equal([...mine].map(([n]) => n), ["set-cookie", "x-a", "x-b"]);
});

/** An Http1Response over `wire` (a whole response), as http1Fetch would make it. */
async function responseOf(wire: string): Promise<{ res: Http1Response; closed: () => number }> {
  const reader = new Reader(scripted([latin1(wire)]));
  let closed = 0;
  const link: BodyLink = { origin: ORIGIN, close: () => void closed++, whenStopped() {} };
  const head = await readHead(reader, 1024, ORIGIN);
  const frame = framing(head, "GET", ORIGIN);
  const body = frame.kind === "none" ? null : new Http1Body(link, reader, frame, 1024);
  const res = new Http1Response(head.status, head.statusText, new Http1Headers(head.fields), body);
  return { res, closed: () => closed };
}

test("Http1Response: text, json, arrayBuffer and ok as Response gives them; a body reads once", async () => {
  const json = '{"access_token":"Atza|x","n":1}';
  const wire = `HTTP/1.1 200 OK\r\nContent-Length: ${json.length}\r\n\r\n${json}`;
  const a = await responseOf(wire);
  assert.is(a.res.ok, true);
  assert.is(a.res.statusText, "OK");
  assert.equal(await a.res.json(), JSON.parse(json));
  assert.is(a.closed(), 1, "the end of the body closes the socket");
  try {
    await a.res.text();
    assert.unreachable("a body reads once");
  } catch (e) {
    assert.instance(e, TypeError);
    assert.match((e as Error).message, /already consumed/);
  }
  const b = await responseOf("HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\n\xff\xfeok");
  assert.is(b.res.ok, false);
  assert.equal(new Uint8Array(await b.res.arrayBuffer()), latin1("\xff\xfeok"));
  const c = await responseOf("HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\n\xff\xfeok");
  assert.is(await c.res.text(), "\ufffd\ufffdok", "bad UTF-8 replaced, as Response.text() does");
});

test("Http1Body: cancel closes the socket and ends the reads; a failure repeats", async () => {
  const a = await responseOf("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345");
  const reader = a.res.body!.getReader();
  assert.equal(await reader.read(), { done: false, value: latin1("12345") });
  await reader.cancel();
  assert.is(a.closed(), 1);
  assert.equal(await reader.read(), { done: true });
  const b = await responseOf("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345");
  const r = b.res.body!.getReader();
  await r.read();
  for (let i = 0; i < 2; i++) {
    try {
      await r.read();
      assert.unreachable("a short body fails, never ends quietly");
    } catch (e) {
      assert.match((e as Error).message, /body ended after 5 of 10 bytes/);
    }
  }
  assert.is(b.closed(), 1);
});

test.run();
