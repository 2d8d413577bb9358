/**
 * readHead(), framing() and Http1Body over scripted reads: every way a small response can be
 * cut into reads gives the same answer, and each malformed response fails with its reason.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type BodyLink, Http1Body } from "./_body.ts";
import { framing, readHead } from "./_head.ts";
import { Reader } from "./_reader.ts";
import { latin1, scripted } from "../../test/support/net.ts";

const ORIGIN = "http://test.example";

interface Parsed {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  body: string | null;
  closed: number;
}

async function parse(
  pieces: Uint8Array[],
  opts: { method?: string; maxHeaderBytes?: number } = {},
): Promise<Parsed> {
  const maxHeaderBytes = opts.maxHeaderBytes ?? 16 * 1024;
  const reader = new Reader(scripted(pieces));
  const link: BodyLink & { closed: number } = {
    origin: ORIGIN,
    closed: 0,
    close() {
      this.closed++;
    },
    whenStopped() {},
  };
  const head = await readHead(reader, maxHeaderBytes, ORIGIN);
  const frame = framing(head, opts.method ?? "GET", ORIGIN);
  let body: string | null = null;
  if (frame.kind !== "none") {
    body = await textOf(new Http1Body(link, reader, frame, maxHeaderBytes));
  }
  return {
    status: head.status,
    statusText: head.statusText,
    headers: head.fields.map(([n, v]) => [n, v]),
    body,
    closed: link.closed,
  };
}

/** The whole body as UTF-8 text (as `Response.text()` decodes it). */
async function textOf(body: Http1Body): Promise<string> {
  const reader = body.getReader();
  const parts: number[] = [];
  for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(...r.value!);
  return new TextDecoder().decode(new Uint8Array(parts));
}

/** Every split of `wire` into two reads, and one byte per read. */
function splits(wire: string): Uint8Array[][] {
  const bytes = latin1(wire);
  const out: Uint8Array[][] = [[bytes]];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push(Array.from(bytes, (b) => Uint8Array.of(b)));
  return out;
}

async function failure(wire: string, opts: { maxHeaderBytes?: number } = {}): Promise<Error> {
  try {
    await parse([latin1(wire)], opts);
  } catch (e) {
    assert.instance(e, TypeError);
    return e as Error;
  }
  assert.unreachable(`parsed: ${JSON.stringify(wire.slice(0, 60))}`);
  throw new Error("unreachable");
}

test("Http1Body decodes chunked the same at every read boundary, trailers dropped", async () => {
  const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n" +
    "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n";
  const cases = splits(wire);
  assert.is(cases.length, latin1(wire).length + 1);
  for (const pieces of cases) {
    const r = await parse(pieces);
    assert.equal(r, {
      status: 200,
      statusText: "OK",
      headers: [["Transfer-Encoding", "chunked"], ["X-A", "1"]],
      body: "Wikipedia in\r\n\r\nchunks.",
      closed: 1,
    }, `split into ${pieces.length} reads`);
  }
});

test("Http1Body reads exactly Content-Length bytes at every read boundary", async () => {
  const wire = "HTTP/1.0 201 Created\r\ncontent-length: 11\r\n\r\nhello worldIGNORED";
  for (const pieces of splits(wire)) {
    const r = await parse(pieces);
    assert.is(r.status, 201);
    assert.is(r.statusText, "Created");
    assert.is(r.body, "hello world");
    assert.is(r.closed, 1);
  }
});

test("Http1Body reads until the server closes when there is no framing", async () => {
  for (const pieces of splits("HTTP/1.1 200 OK\nServer: x\n\nuntil close")) {
    const r = await parse(pieces);
    assert.is(r.body, "until close", "bare LF line ends are accepted");
    assert.equal(r.headers, [["Server", "x"]]);
  }
});

test("readHead() skips 1xx responses and framing() gives no body for HEAD, 204, 304", async () => {
  const r = await parse([
    latin1("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
    latin1("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
  ]);
  assert.is(r.status, 200);
  assert.is(r.body, "ok");
  for (
    const [wire, method] of [
      ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"],
      ["HTTP/1.1 204 No Content\r\n\r\n", "GET"],
      ["HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET"],
    ] as const
  ) {
    const p = await parse([latin1(wire)], { method });
    assert.is(p.body, null, wire);
  }
});

test("readHead() accepts a head of exactly maxHeaderBytes and 100 header lines", async () => {
  const status = "HTTP/1.1 200 OK\r\n";
  const exact = status + "X-Pad: " + "a".repeat(1000 - status.length - 7 - 4) + "\r\n\r\n";
  assert.is(exact.length, 1000);
  assert.is((await parse([latin1(exact)], { maxHeaderBytes: 1000 })).status, 200);
  const over = await failure(exact.replace("X-Pad: ", "X-Pad: a"), { maxHeaderBytes: 1000 });
  assert.is(
    over.message,
    `Invalid response from ${ORIGIN}: header section is larger than 1000 bytes`,
  );

  const hundred = status + Array.from({ length: 100 }, (_, i) => `H${i}: v\r\n`).join("") + "\r\n";
  assert.is((await parse([latin1(hundred)])).headers.length, 100);
});

const BAD: Array<[string, string, RegExp]> = [
  ["HTTP/2 200 OK\r\n\r\n", "HTTP/2", /malformed status line/],
  ["HTTP/2.0 200 OK\r\n\r\n", "HTTP/2.0", /unsupported HTTP version 2\.0/],
  ["HTTP/1.2 200 OK\r\n\r\n", "HTTP/1.2", /unsupported HTTP version 1\.2/],
  ["HTTP/1.1 20 OK\r\n\r\n", "two-digit status", /malformed status line/],
  ["ICY 200 OK\r\n\r\n", "not HTTP", /malformed status line/],
  ["<html>hello</html>", "no status line", /connection closed inside the status line/],
  ["", "nothing", /connection closed before any response/],
  ["HTTP/1.1 200 OK\rX: y\r\n\r\n", "bare CR", /malformed status line/],
  ["HTTP/1.1 200 O\x01K\r\n\r\n", "CTL in reason", /invalid character in the status line/],
  ["HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n", "obs-fold", /header line 2 is folded/],
  ["HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", "space before colon", /header line 1 has no valid field/],
  ["HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "no colon", /header line 1 has no valid field/],
  ["HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "NUL in value", /control character/],
  ["HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "CR in value", /control character/],
  ["HTTP/1.1 200 OK\r\nX: 1\r\n", "no blank line", /closed inside the header section/],
  [
    "HTTP/1.1 200 OK\r\n" + "X: 1\r\n".repeat(101) + "\r\n",
    "101 header lines",
    /more than 100 header lines/,
  ],
  [
    "HTTP/1.1 200 OK\r\nX: " + "a".repeat(16 * 1024) + "\r\n\r\n",
    "17 KiB header",
    /header section is larger than 16384 bytes/,
  ],
  ["HTTP/1.1 100 Continue\r\n\r\n".repeat(9), "nine 1xx", /more than 8 interim/],
  ["HTTP/1.1 100 Continue\r\n\r\n", "only a 1xx", /connection closed after a 1xx/],
  [
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "CL and TE",
    /both Content-Length and Transfer-Encoding/,
  ],
  [
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "conflicting CL",
    /conflicting Content-Length/,
  ],
  ["HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", "CL list", /conflicting Content-Length/],
  ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "negative CL", /malformed Content-Length/],
  ["HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", "CL 1e3", /malformed Content-Length/],
  [
    "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n",
    "CL 16 digits",
    /malformed Content-Length/,
  ],
  [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "TE gzip",
    /unsupported Transfer-Encoding/,
  ],
  [
    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE in 1.0",
    /Transfer-Encoding in an HTTP\/1\.0 response/,
  ],
];

test("readHead() and framing() refuse malformed heads, naming what is wrong", async () => {
  for (const [wire, label, why] of BAD) {
    const e = await failure(wire);
    assert.match(e.message, why, label);
    assert.ok(e.message.startsWith(`Invalid response from ${ORIGIN}: `), label);
  }
});

test("readHead() accepts repeated equal Content-Length values", async () => {
  const r = await parse([
    latin1("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\ncontent-length: 02\r\n\r\nokNOT"),
  ]);
  assert.is(r.body, "ok");
});

const BAD_BODY: Array<[string, string, RegExp]> = [
  ["zz\r\nabc\r\n0\r\n\r\n", "hex digits", /malformed chunk size in chunk 1/],
  ["-1\r\n", "negative size", /malformed chunk size/],
  [" 3\r\nabc\r\n0\r\n\r\n", "leading space", /malformed chunk size/],
  ["0x3\r\nabc\r\n0\r\n\r\n", "0x prefix", /malformed chunk size/],
  ["fffffffffffffffff\r\n", "17 hex digits", /malformed chunk size/],
  ["3\r\nabcd\r\n0\r\n\r\n", "data longer than its size", /chunk 1 is longer than its size/],
  ["3\r\nab", "cut inside a chunk", /body ended inside chunk 1/],
  ["3\r\nabc\r\n", "no last chunk", /body ended before a chunk-size line/],
  ["3\r\nabc", "cut after the data", /body ended after chunk 1/],
  ["3;" + "x".repeat(5000) + "\r\nabc\r\n0\r\n\r\n", "long extension", /longer than 4096/],
  ["3;a\rb\r\nabc\r\n0\r\n\r\n", "CR inside an extension", /malformed chunk size in chunk 1/],
  ["3;a\r\r\nabc\r\n0\r\n\r\n", "CR CR LF", /malformed chunk size in chunk 1/],
  ["3 3\r\nabc\r\n0\r\n\r\n", "two sizes", /malformed chunk size in chunk 1/],
  ["\r\n", "empty size line", /malformed chunk size in chunk 1/],
  [
    "1\r\na\r\n3\r\nabc\rX\r\n0\r\n\r\n",
    "CR then data after a chunk",
    /chunk 2 is longer than its size/,
  ],
  ["1\r\na\r\n0000000000000000\r\n", "16 zeros", /malformed chunk size in chunk 2/],
  ["3;x", "cut inside an extension", /body ended inside a chunk-size line/],
  ["3\r", "cut after a size line's CR", /body ended inside a chunk-size line/],
  ["3\r\nabc\r", "cut after the data's CR", /body ended after chunk 1/],
  ["0\r\nX: " + "a".repeat(17000) + "\r\n\r\n", "17 KiB trailer", /trailer section is longer/],
  ["0\r\nX: 1\r\n", "cut in the trailers", /body ended before the trailer section/],
  ["0\r\n" + "X: 1\r\n".repeat(101) + "\r\n", "101 trailer lines", /more than 100 trailer/],
];

test("Http1Body errors the stream for a bad chunked body, never a short body", async () => {
  for (const [body, label, why] of BAD_BODY) {
    const e = await failure(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    assert.match(e.message, why, label);
  }
  const cut = await failure("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
  assert.match(cut.message, /body ended after 10 of 100 bytes/);
});

test("Http1Body bounds a chunk-size line at 4096 bytes, line end included, at any split", async () => {
  const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const line = (n: number) => "3;" + "e".repeat(n - 4) + "\r\n"; // n bytes in all
  assert.is(line(4096).length, 4096);
  const exact = latin1(head + line(4096) + "abc\r\n" + line(4096).replace("3", "0") + "\r\n");
  const over = latin1(head + line(4097) + "abc\r\n0\r\n\r\n");
  for (const size of [1, 7, 100, 4095, 4096, 4097, 16 * 1024, 64 * 1024]) {
    const pieces = (b: Uint8Array) =>
      Array.from(
        { length: Math.ceil(b.length / size) },
        (_, i) => b.subarray(i * size, (i + 1) * size),
      );
    assert.is((await parse(pieces(exact))).body, "abc", `4096 bytes, reads of ${size}`);
    try {
      await parse(pieces(over));
      assert.unreachable("a line of 4097 bytes was accepted");
    } catch (e) {
      assert.instance(e, TypeError);
      assert.match((e as Error).message, /a chunk-size line is longer than 4096 bytes/);
    }
  }
});

test("Http1Body gives the data of all the chunks in one read as one piece", async () => {
  const head = latin1("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  const wire = latin1("1\r\na\r\n".repeat(65_536) + "0\r\n\r\n");
  const reader = new Reader(scripted([head, wire]));
  const link: BodyLink = { origin: ORIGIN, close() {}, whenStopped() {} };
  const frame = framing(await readHead(reader, 1024, ORIGIN), "GET", ORIGIN);
  assert.is(frame.kind, "chunked");
  if (frame.kind === "none") return;
  const body = new Http1Body(link, reader, frame, 1024).getReader();
  const sizes: number[] = [];
  for (let r = await body.read(); !r.done; r = await body.read()) {
    const piece = r.value!;
    assert.ok(piece.every((b) => b === 0x61));
    assert.is(piece.buffer.byteLength, piece.length, "each piece has a buffer of its own size");
    sizes.push(piece.length);
  }
  assert.is(sizes.reduce((a, b) => a + b, 0), 65_536);
  // One piece per 16 KiB read (6 wire bytes per data byte); the 25th read holds the last chunk.
  assert.is(sizes.length, 24);
  assert.ok(sizes.every((n) => n === 2730 || n === 2731), String(sizes));
});

test("Http1Body gives the data before a framing error, then the error", async () => {
  const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\nzz\r\n";
  const reader = new Reader(scripted([latin1(wire)]));
  const link: BodyLink & { closed: number } = {
    origin: ORIGIN,
    closed: 0,
    close() {
      this.closed++;
    },
    whenStopped() {},
  };
  const frame = framing(await readHead(reader, 1024, ORIGIN), "GET", ORIGIN);
  if (frame.kind === "none") return assert.unreachable();
  const body = new Http1Body(link, reader, frame, 1024).getReader();
  assert.equal(await body.read(), { done: false, value: latin1("abc") });
  try {
    await body.read();
    assert.unreachable("read past a malformed size");
  } catch (e) {
    assert.match((e as Error).message, /malformed chunk size in chunk 3/);
  }
  assert.is(link.closed, 1);
});

test("Reader hands out body bytes one read at a time, never ahead of the caller", async () => {
  const read = scripted([latin1("HTTP/1.1 200 OK\r\n\r\n"), latin1("a"), latin1("b"), latin1("c")]);
  const reader = new Reader(read);
  const head = await readHead(reader, 1024, ORIGIN);
  const link: BodyLink = { origin: ORIGIN, close() {}, whenStopped() {} };
  const frame = framing(head, "GET", ORIGIN);
  assert.is(frame.kind, "close");
  if (frame.kind === "none") return;
  const body = new Http1Body(link, reader, frame, 1024).getReader();
  assert.is(read.reads, 1, "the head came in one read");
  assert.equal(await body.read(), { done: false, value: latin1("a") });
  assert.is(read.reads, 2);
  assert.equal(await body.read(), { done: false, value: latin1("b") });
  assert.is(read.reads, 3);
});

test.run();
