/**
 * createHttp1Fetch() against Deno.serve on 127.0.0.1 (plain and TLS with TEST-ONLY
 * certificates), and postForm() from src/auth/http.ts giving the same answers with it as with
 * Deno's fetch.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { ProtocolError, TransportError } from "../auth/errors.ts";
import { classifyFetchError, postForm } from "../auth/http.ts";
import type { Fetch } from "../auth/types.ts";
import { createHttp1Fetch, http1Fetch } from "./http1.ts";
import {
  delay,
  peerCloses,
  rawServer,
  readRequest,
  rejection,
  settlesWithin,
} from "../../test/support/net.ts";
import {
  CERT_EXPIRED,
  CERT_FUTURE,
  CERT_VALID,
  TEST_CA,
  TEST_KEY,
} from "../../test/support/certs.ts";

const SECRET_FORM = { grant_type: "refresh_token", refresh_token: "Atzr|SECRET-REFRESH-TOKEN" };
const setClock = new FakeClock(); // 2026-11-24, after BUILD_TIME_FLOOR
const unsetClock = new FakeClock({ wall: 0 }); // 1970: no RTC, no NTP yet

/** Runs `fn` with a Deno.serve on `hostname` (TLS when `tls` is given), then shuts it down. */
async function withServer<T>(
  tls: { cert: string; key: string } | undefined,
  handler: (req: Request) => Response | Promise<Response>,
  fn: (port: number) => Promise<T>,
  hostname = "127.0.0.1",
): Promise<T> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname, port: 0, signal: ac.signal, onListen() {}, ...(tls ?? {}) },
    handler,
  );
  try {
    return await fn(server.addr.port);
  } finally {
    ac.abort();
    await server.finished;
  }
}

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A handler that records each request and answers with `answer`. */
function recording(answer: (req: Request) => Response = () => Response.json({ ok: true })) {
  const seen: Seen[] = [];
  const handler = async (req: Request) => {
    seen.push({
      method: req.method,
      url: req.url,
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
    });
    return answer(req);
  };
  return { seen, handler };
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP against Deno.serve

test("http1Fetch() POSTs a form: the server sees method, path, query, headers and body", async () => {
  const { seen, handler } = recording(() => Response.json({ access_token: "Atza|x" }));
  await withServer(undefined, handler, async (port) => {
    const body = new URLSearchParams(SECRET_FORM).toString();
    const res = await http1Fetch(`http://127.0.0.1:${port}/auth/O2/token?a=1&b=%20#frag`, {
      method: "POST",
      headers: new Headers({
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      }),
      body,
      redirect: "manual",
    });
    assert.is(res.status, 200);
    assert.is(res.headers.get("content-type"), "application/json");
    assert.equal(await res.json(), { access_token: "Atza|x" });
    assert.is(seen.length, 1);
    const s = seen[0]!;
    assert.is(s.method, "POST");
    assert.is(s.url, `http://127.0.0.1:${port}/auth/O2/token?a=1&b=%20`);
    assert.is(s.headers["host"], `127.0.0.1:${port}`);
    assert.is(s.headers["content-length"], String(body.length));
    assert.is(s.headers["content-type"], "application/x-www-form-urlencoded");
    assert.is(s.headers["accept"], "application/json");
    assert.is(s.headers["connection"], "close");
    assert.is(s.headers["accept-encoding"], "identity");
    assert.is(s.headers["user-agent"], "linkd");
    assert.is(s.body, body);
  });
});

test("http1Fetch() GETs, also from a Request object, with its own User-Agent", async () => {
  const { seen, handler } = recording((req) =>
    new Response(`you asked ${new URL(req.url).search}`)
  );
  await withServer(undefined, handler, async (port) => {
    const f = createHttp1Fetch({ userAgent: "linkd/9.9" });
    const a = await f(new URL(`http://127.0.0.1:${port}/x?q=1`));
    assert.is(await a.text(), "you asked ?q=1");
    const b = await f(
      new Request(`http://127.0.0.1:${port}/r`, {
        method: "PUT",
        headers: { "X-From": "request" },
        body: "put-body",
      }),
    );
    assert.is(b.status, 200);
    await b.body?.cancel();
    assert.is(seen[0]!.method, "GET");
    assert.is(seen[0]!.headers["user-agent"], "linkd/9.9");
    assert.is(seen[0]!.headers["content-length"], undefined);
    assert.equal([seen[1]!.method, seen[1]!.headers["x-from"], seen[1]!.body], [
      "PUT",
      "request",
      "put-body",
    ]);
  });
});

test("http1Fetch() returns a 3xx as it is (status, Location) and never follows it", async () => {
  const { seen, handler } = recording((req) =>
    new URL(req.url).pathname === "/token"
      ? new Response("moved", { status: 307, headers: { location: "/elsewhere" } })
      : new Response("followed!")
  );
  await withServer(undefined, handler, async (port) => {
    for (const redirect of ["manual", "follow", "error"] as const) {
      const res = await http1Fetch(`http://127.0.0.1:${port}/token`, {
        method: "POST",
        body: "x=1",
        redirect,
      });
      assert.is(res.status, 307, redirect);
      assert.is(res.ok, false, "the redirect itself, not an opaque one");
      assert.is(res.headers.get("location"), "/elsewhere");
      assert.is(await res.text(), "moved");
    }
    assert.equal(seen.map((s) => new URL(s.url).pathname), ["/token", "/token", "/token"]);
  });
});

test("http1Fetch() reads 4xx and 5xx bodies, and no body for HEAD and 204", async () => {
  const handler = (req: Request) => {
    const path = new URL(req.url).pathname;
    if (path === "/400") return Response.json({ error: "invalid_grant" }, { status: 400 });
    if (path === "/503") return new Response("try later", { status: 503, statusText: "Busy" });
    if (path === "/204") return new Response(null, { status: 204 });
    return new Response("head body");
  };
  await withServer(undefined, handler, async (port) => {
    const base = `http://127.0.0.1:${port}`;
    const a = await http1Fetch(`${base}/400`);
    assert.equal([a.status, await a.json()], [400, { error: "invalid_grant" }]);
    const b = await http1Fetch(`${base}/503`);
    // Deno.serve sends its own reason phrase.
    assert.equal([b.status, b.statusText, await b.text()], [
      503,
      "Service Unavailable",
      "try later",
    ]);
    const c = await http1Fetch(`${base}/204`);
    assert.equal([c.status, c.body], [204, null]);
    const d = await http1Fetch(`${base}/`, { method: "HEAD" });
    assert.equal([d.status, d.body, d.headers.get("content-length")], [200, null, "9"]);
  });
});

test("http1Fetch() streams a big body on demand and cancel() closes the socket", async () => {
  let pulled = 0;
  let cancelled: () => void = () => {};
  const cancel = new Promise<void>((resolve) => (cancelled = resolve));
  const handler = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          pulled += 65536;
          c.enqueue(new Uint8Array(65536).fill(0x61));
        },
        cancel() {
          cancelled();
        },
      }, { highWaterMark: 0 }),
    );
  await withServer(undefined, handler, async (port) => {
    const res = await http1Fetch(`http://127.0.0.1:${port}/big`);
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 1024 * 1024) got += (await reader.read()).value!.length;
    await delay(50);
    assert.ok(pulled < 32 * 1024 * 1024, `the server is held back by the client (${pulled})`);
    await reader.cancel();
    assert.ok(await settlesWithin(cancel, 3000), "the server saw the connection go");
  });
});

test("http1Fetch() connects to an IPv6 literal", async () => {
  let v6 = true;
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
  } catch {
    v6 = false; // no IPv6 loopback here: nothing to test
  }
  if (!v6) return;
  await withServer(undefined, (req) => new Response(req.headers.get("host")), async (port) => {
    const res = await http1Fetch(`http://[::1]:${port}/`);
    assert.is(await res.text(), `[::1]:${port}`);
  }, "::1");
});

test("createHttp1Fetch() refuses bad options with a TypeError", () => {
  const bad = [
    { maxHeaderBytes: 0 },
    { maxHeaderBytes: 1.5 },
    { connectTimeoutMs: 0 },
    { connectTimeoutMs: Number.NaN },
    { userAgent: "" },
    { userAgent: "linkd\r\nX-Evil: 1" },
  ];
  for (const o of bad) assert.throws(() => createHttp1Fetch(o), TypeError, JSON.stringify(o));
  createHttp1Fetch({ connectTimeoutMs: Infinity, maxHeaderBytes: 64 });
});

// ---------------------------------------------------------------------------------------------
// HTTPS, and classifyFetchError() on its failures

function tlsError(f: Fetch, port: number): Promise<unknown> {
  return rejection(f(`https://127.0.0.1:${port}/`));
}

test("http1Fetch() over TLS: a trusted certificate works, an unknown issuer is tls", async () => {
  await withServer(
    { cert: CERT_VALID, key: TEST_KEY },
    () => Response.json({ ok: 1 }),
    async (port) => {
      const trusting = createHttp1Fetch({ caCerts: [TEST_CA] });
      const res = await trusting(`https://127.0.0.1:${port}/token`, {
        method: "POST",
        body: "a=1",
      });
      assert.equal(await res.json(), { ok: 1 });

      const e = await tlsError(http1Fetch, port);
      // TypeError "Cannot connect to https://127.0.0.1:PORT", cause InvalidData "invalid peer
      // certificate: UnknownIssuer"
      assert.instance(e, TypeError);
      assert.match(
        ((e as Error).cause as Error).message,
        /invalid peer certificate: UnknownIssuer/,
      );
      assert.is(classifyFetchError(e, setClock), "tls");
      assert.is(classifyFetchError(e, unsetClock), "clock_unset");
    },
  );
});

test("http1Fetch() over TLS: expired and not-yet-valid certificates are clock_unset", async () => {
  const trusting = createHttp1Fetch({ caCerts: [TEST_CA] });
  for (const cert of [CERT_EXPIRED, CERT_FUTURE]) {
    await withServer({ cert, key: TEST_KEY }, () => new Response("tls"), async (port) => {
      const e = await tlsError(trusting, port);
      assert.match(((e as Error).cause as Error).message, /invalid peer certificate: certificate/);
      assert.is(classifyFetchError(e, setClock), "clock_unset");
    });
  }
});

test("http1Fetch() https:// to a plain-HTTP server is tls; a refused port is network", async () => {
  await withServer(undefined, () => new Response("plain"), async (port) => {
    const e = await tlsError(http1Fetch, port);
    assert.match(((e as Error).cause as Error).message, /corrupt message/);
    assert.is(classifyFetchError(e, setClock), "tls");
    assert.is(classifyFetchError(e, unsetClock), "clock_unset");
  });
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const e = await rejection(http1Fetch(`http://127.0.0.1:${port}/`));
  assert.instance(e, TypeError);
  assert.is((e as Error).message, `Cannot connect to http://127.0.0.1:${port}`);
  assert.is(classifyFetchError(e, setClock), "network");
  assert.is(classifyFetchError(e, unsetClock), "network");
});

test("http1Fetch() over TLS: cancel() of a big body closes the connection", async () => {
  let cancelled: () => void = () => {};
  const cancel = new Promise<void>((resolve) => (cancelled = resolve));
  const handler = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          c.enqueue(new Uint8Array(65536).fill(0x62));
        },
        cancel() {
          cancelled();
        },
      }, { highWaterMark: 0 }),
    );
  await withServer({ cert: CERT_VALID, key: TEST_KEY }, handler, async (port) => {
    const res = await createHttp1Fetch({ caCerts: [TEST_CA] })(`https://127.0.0.1:${port}/`);
    const reader = res.body!.getReader();
    for (let got = 0; got < 256 * 1024;) got += (await reader.read()).value!.length;
    await reader.cancel();
    assert.ok(await settlesWithin(cancel, 3000), "the server saw the connection go");
  });
});

// ---------------------------------------------------------------------------------------------
// postForm() parity: the same answers with http1Fetch as with Deno's fetch

test("postForm() answers the same with http1Fetch as with Deno's fetch", async () => {
  const handler = async (req: Request) => {
    const form = new URLSearchParams(await req.text());
    switch (new URL(req.url).pathname) {
      case "/ok":
        return Response.json({ access_token: "Atza|a", echo: form.get("grant_type") });
      case "/pending":
        return Response.json({ error: "authorization_pending" }, { status: 400 });
      case "/html":
        return new Response("<html>captive portal</html>", { status: 200 });
      case "/redirect":
        return new Response(null, { status: 302, headers: { location: "/ok" } });
      case "/chunked":
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('{"a":'));
              c.enqueue(new TextEncoder().encode("1}"));
              c.close();
            },
          }),
        );
      case "/big":
        return new Response("x".repeat(100_000));
      default:
        return new Response("not found", { status: 404 });
    }
  };
  await withServer(undefined, handler, async (port) => {
    const run = async (f: Fetch, path: string) => {
      try {
        return await postForm(f, `http://127.0.0.1:${port}${path}`, SECRET_FORM, {
          clock: new FakeClock(),
          timeoutMs: 10_000,
          maxBytes: 64 * 1024,
        });
      } catch (e) {
        if (e instanceof ProtocolError) return { error: e.code, status: e.status };
        throw e;
      }
    };
    for (const path of ["/ok", "/pending", "/html", "/redirect", "/chunked", "/big", "/nope"]) {
      const mine = await run(http1Fetch, path);
      const theirs = await run(fetch, path);
      assert.equal(mine, theirs, path);
    }
    assert.equal(await run(http1Fetch, "/ok"), {
      status: 200,
      body: { access_token: "Atza|a", echo: "refresh_token" },
      text: '{"access_token":"Atza|a","echo":"refresh_token"}',
    });
  });

  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const e = await rejection(
    postForm(http1Fetch, `http://127.0.0.1:${port}/token`, SECRET_FORM, {
      clock: new FakeClock(),
      timeoutMs: 10_000,
    }),
  );
  assert.instance(e, TransportError);
  assert.is((e as TransportError).kind, "network");
  assert.match(
    (e as Error).message,
    `POST http://127.0.0.1:${port}/token failed: cannot connect (Connection refused (os error 111))`,
  );
});

test("postForm() with http1Fetch times out and aborts like with fetch, no secret in errors", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    await peerCloses(conn, 5000); // never answers
  });
  try {
    const port = server.port;
    const url = `http://127.0.0.1:${port}/token`;
    const clock = new FakeClock();
    const outcome = rejection(postForm(http1Fetch, url, SECRET_FORM, { clock, timeoutMs: 5000 }));
    await delay(50);
    await clock.advance(5000);
    const t = await outcome as TransportError;
    assert.instance(t, TransportError);
    assert.is(t.kind, "timeout");

    const ac = new AbortController();
    const aborted = rejection(
      postForm(http1Fetch, url, SECRET_FORM, { clock, timeoutMs: 60_000, signal: ac.signal }),
    );
    await delay(50);
    ac.abort();
    const a = await aborted as TransportError;
    assert.is(a.kind, "aborted");
    for (const err of [t, a]) {
      for (const s of [err.message, String(err), err.stack ?? "", JSON.stringify(err)]) {
        assert.not.match(s, "SECRET");
      }
    }
  } finally {
    await server.close();
  }
});

test.run();
