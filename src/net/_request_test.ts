/** prepare(): the exact request bytes, and every input that could smuggle a header refused. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prepare } from "./_request.ts";
import { rejection, text } from "../../test/support/net.ts";

const wire = async (input: string | URL | Request, init?: RequestInit) =>
  text((await prepare(input, init, "linkd")).message);

test("prepare() writes a POST form with Host, Content-Length, Connection: close", async () => {
  const headers = new Headers({ "content-type": "application/x-www-form-urlencoded" });
  const p = await prepare("https://api.example:8443/auth/O2/token?x=1#frag", {
    method: "post",
    headers,
    body: "grant_type=refresh_token",
    redirect: "follow",
  }, "linkd/1.0");
  assert.is(p.origin, "https://api.example:8443");
  assert.is(p.hostname, "api.example");
  assert.is(p.port, 8443);
  assert.is(p.tls, true);
  assert.is(p.method, "POST");
  assert.is(
    text(p.message),
    "POST /auth/O2/token?x=1 HTTP/1.1\r\nHost: api.example:8443\r\n" +
      "content-type: application/x-www-form-urlencoded\r\nContent-Length: 24\r\n" +
      "Connection: close\r\nAccept-Encoding: identity\r\nUser-Agent: linkd/1.0\r\n\r\n" +
      "grant_type=refresh_token",
  );
});

test("prepare() uses default ports, IPv6 literals and a GET without a body", async () => {
  const a = await prepare("http://example.com:80", undefined, "linkd");
  assert.is(a.port, 80);
  assert.is(
    text(a.message),
    "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n" +
      "Accept-Encoding: identity\r\nUser-Agent: linkd\r\n\r\n",
  );
  const b = await prepare(new URL("https://[::1]/p"), undefined, "linkd");
  assert.equal([b.hostname, b.port, b.origin], ["::1", 443, "https://[::1]"]);
  assert.match(text(b.message), "\r\nHost: [::1]\r\n");
  const c = await prepare("http://[fe80::1]:8080/", undefined, "linkd");
  assert.equal([c.hostname, c.port], ["fe80::1", 8080]);
  assert.match(text(c.message), "\r\nHost: [fe80::1]:8080\r\n");
});

test("prepare() sizes every body type and gives fetch's default Content-Type", async () => {
  // [body, the bytes sent (latin1), the Content-Type fetch would add]
  const cases: Array<[BodyInit, string, string | null]> = [
    ["h\u00e9llo", "h\xc3\xa9llo", "text/plain;charset=UTF-8"],
    [new URLSearchParams({ a: "x y" }), "a=x+y", "application/x-www-form-urlencoded;charset=UTF-8"],
    [new Uint8Array([1, 2, 3]).subarray(1), "\x02\x03", null],
    [new Uint8Array([4, 5]).buffer, "\x04\x05", null],
    [new Blob(["blob"], { type: "text/x-b" }), "blob", "text/x-b"],
  ];
  for (const [body, sent, type] of cases) {
    const w = await wire("http://h/", { method: "PUT", body });
    assert.ok(w.endsWith(`\r\n\r\n${sent}`), JSON.stringify(sent));
    assert.match(w, `\r\nContent-Length: ${sent.length}\r\n`);
    if (type) assert.match(w, `\r\nContent-Type: ${type}\r\n`);
    else assert.not.match(w, /content-type/i);
  }
  assert.match(await wire("http://h/", { method: "POST" }), "\r\nContent-Length: 0\r\n");
  const own = await wire("http://h/", {
    method: "POST",
    body: "x",
    headers: { "Content-Type": "a/b" },
  });
  assert.is(own.match(/content-type/gi)?.length, 1, "the caller's Content-Type wins");
});

test("prepare() reads a Request's method, headers, body and signal; init overrides", async () => {
  const ac = new AbortController();
  const req = new Request("http://h/r?q", {
    method: "PATCH",
    headers: { "X-Req": "1" },
    body: "from-request",
    signal: ac.signal,
  });
  const p = await prepare(req, undefined, "linkd");
  assert.is(p.signal?.aborted, false);
  ac.abort();
  assert.is(p.signal?.aborted, true, "the Request's signal is used");
  const w = text(p.message);
  assert.ok(w.startsWith("PATCH /r?q HTTP/1.1\r\n"), w);
  assert.match(w, "\r\nx-req: 1\r\n");
  assert.ok(w.endsWith("\r\n\r\nfrom-request"));
  const o = await wire(new Request("http://h/r", { headers: { "X-Req": "1" } }), {
    method: "DELETE",
    headers: { "X-Init": "2" },
  });
  assert.ok(o.startsWith("DELETE /r HTTP/1.1\r\n"));
  assert.match(o, "\r\nX-Init: 2\r\n");
  assert.not.match(o, "x-req");
});

test("prepare() drops the caller's framing headers and keeps its own", async () => {
  const w = await wire("http://h/", {
    method: "POST",
    body: "abc",
    headers: [
      ["Host", "evil.example"],
      ["Content-Length", "1"],
      ["Transfer-Encoding", "chunked"],
      ["Connection", "keep-alive"],
      ["Accept-Encoding", "gzip"],
      ["User-Agent", "custom/2"],
      ["X-Dup", "1"],
      ["X-Dup", "2"],
    ],
  });
  assert.is(
    w,
    "POST / HTTP/1.1\r\nHost: h\r\nUser-Agent: custom/2\r\nX-Dup: 1\r\nX-Dup: 2\r\n" +
      "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 3\r\nConnection: close\r\n" +
      "Accept-Encoding: identity\r\n\r\nabc",
  );
});

test("prepare() refuses CR, LF and NUL anywhere, with a TypeError that quotes no value", async () => {
  const SECRET = "Atzr|SECRET";
  const bad: Array<[string | URL | Request, RequestInit | undefined, RegExp]> = [
    ["http://h/a\r\nX-Injected: 1", undefined, /URL has a control character/],
    ["http://h/a\nb", undefined, /URL has a control character/],
    ["http://h/a\0b", undefined, /URL has a control character/],
    ["http://h/a\tb", undefined, /URL has a control character/],
    ["http://h/", { method: "GET /x HTTP/1.1\r\nX:" }, /method is not a valid HTTP token/],
    ["http://h/", { method: "POST\n" }, /method is not a valid HTTP token/],
    ["http://h/", { headers: { "X-A": `${SECRET}\r\nX-B: 1` } }, /header X-A has a CR, LF or NUL/],
    ["http://h/", { headers: { "X-A": `${SECRET}\r\n` } }, /header X-A has a CR, LF or NUL/],
    ["http://h/", { headers: [["X-A", `${SECRET}\0`]] }, /header X-A has a CR, LF or NUL/],
    ["http://h/", { headers: { "X-A\r\nX-B": SECRET } }, /header name is not a valid HTTP token/],
    ["http://h/", { headers: { "": SECRET } }, /header name is not a valid HTTP token/],
    ["http://h/", { headers: { "X-A": `${SECRET}\u0100` } }, /above U\+00FF/],
    ["ftp://h/", undefined, /scheme must be http or https, got ftp:/],
    ["file:///etc/passwd", undefined, /scheme must be http or https/],
    ["http://user:pw@h/", undefined, /must not include credentials/],
    ["http://:pw@h/", undefined, /must not include credentials/],
    ["/relative", undefined, /not a valid absolute URL/],
    ["http://h/", { method: "CONNECT" }, /method CONNECT is forbidden/],
    ["http://h/", { method: "trace" }, /method TRACE is forbidden/],
    ["http://h/", { body: SECRET }, /GET method cannot have a body/],
    ["http://h/", { method: "HEAD", body: SECRET }, /HEAD method cannot have a body/],
    [
      "http://h/",
      { method: "POST", body: new ReadableStream() },
      /body must be a string, bytes, URLSearchParams or a Blob/,
    ],
  ];
  for (const [input, init, why] of bad) {
    const e = await rejection(prepare(input, init, "linkd"));
    assert.instance(e, TypeError, String(why));
    const all = `${(e as Error).message} ${String(e)} ${(e as Error).stack}`;
    assert.match((e as Error).message, why);
    assert.not.match(all, "SECRET", String(why));
  }
});

test.run();
