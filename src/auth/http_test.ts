import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import { ERR_INVALID_ARG_VALUE } from "../text.ts";
import { BODY_TOO_LARGE, ProtocolError, TransportError, type TransportKind } from "./errors.ts";
import { BUILD_TIME_FLOOR, classifyFetchError, DEFAULT_MAX_BYTES, postForm } from "./http.ts";
import type { Fetch } from "./types.ts";
import {
  CERT_EXPIRED,
  CERT_FUTURE,
  CERT_VALID,
  TEST_CA,
  TEST_KEY,
} from "../../test/support/certs.ts";

const URL_ = "https://auth.example/auth/O2/token";

interface Sent {
  url: string;
  init: RequestInit;
  body: string;
  headers: Headers;
}

/** A fetch that records each request and answers with the scripted responses in order. */
function scripted(...answers: Array<Response | (() => Response | Promise<Response>)>) {
  const sent: Sent[] = [];
  const fetch: Fetch = (input, init = {}) => {
    sent.push({
      url: String(input),
      init,
      body: typeof init.body === "string" ? init.body : "",
      headers: new Headers(init.headers),
    });
    const next = answers.shift();
    if (next === undefined) return Promise.reject(new Error("no scripted answer left"));
    return Promise.resolve(typeof next === "function" ? next() : next);
  };
  return { fetch, sent };
}

/** A fetch that never answers (and ignores its signal, as a wedged stack would). */
function hanging() {
  const signals: AbortSignal[] = [];
  const fetch: Fetch = (_input, init = {}) => {
    if (init.signal) signals.push(init.signal);
    return new Promise<Response>(() => {});
  };
  return { fetch, signals };
}

/** A body stream that makes `chunk`-byte chunks forever and counts what was pulled. */
function endless(chunk: number) {
  const stats = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      stats.pulled += chunk;
      c.enqueue(new Uint8Array(chunk).fill(0x61));
    },
    cancel() {
      stats.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, stats };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.unreachable("expected a rejection");
  return undefined;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

// ---------------------------------------------------------------------------------------------
// The request

test("postForm() posts a urlencoded form with Accept: application/json, no redirects", async () => {
  const { fetch, sent } = scripted(json({ ok: true }));
  const clock = new FakeClock();
  const res = await postForm(fetch, URL_, { a: "x y", b: '{"k":"v"}', c: "&=" }, {
    clock,
    timeoutMs: 1000,
  });
  assert.equal(res, { status: 200, body: { ok: true }, text: '{"ok":true}' });
  assert.ok(Object.isFrozen(res));
  assert.is(sent.length, 1);
  const s = sent[0]!;
  assert.is(s.url, URL_);
  assert.is(s.init.method, "POST");
  assert.is(s.init.redirect, "manual");
  assert.is(s.headers.get("content-type"), "application/x-www-form-urlencoded");
  assert.is(s.headers.get("accept"), "application/json");
  assert.is(s.body, "a=x+y&b=%7B%22k%22%3A%22v%22%7D&c=%26%3D");
  assert.equal(Object.fromEntries(new URLSearchParams(s.body)), {
    a: "x y",
    b: '{"k":"v"}',
    c: "&=",
  });
  assert.is(clock.pending, 0, "the timeout timer is cancelled once the answer is read");
});

test("postForm() adds extra headers but keeps its own Content-Type and Accept", async () => {
  const { fetch, sent } = scripted(json({}));
  await postForm(fetch, URL_, {}, {
    clock: new FakeClock(),
    timeoutMs: 1000,
    headers: { "Accept-Language": "de-DE", "Content-Type": "text/plain", Accept: "*/*" },
  });
  const h = sent[0]!.headers;
  assert.is(h.get("accept-language"), "de-DE");
  assert.is(h.get("content-type"), "application/x-www-form-urlencoded");
  assert.is(h.get("accept"), "application/json");
});

test("postForm() returns a 3xx as it is instead of following it", async () => {
  const { fetch } = scripted(
    new Response(null, { status: 307, headers: { location: "https://elsewhere.example/" } }),
  );
  const res = await postForm(fetch, URL_, {}, { clock: new FakeClock(), timeoutMs: 1000 });
  assert.equal(res, { status: 307, body: undefined, text: "" });
});

// ---------------------------------------------------------------------------------------------
// The answer's body

test("postForm() leaves body undefined for text that is not JSON, and keeps the text", async () => {
  const { fetch } = scripted(
    new Response("<html>captive portal</html>", { status: 200 }),
    new Response("", { status: 400 }),
    new Response(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), { status: 200 }),
  );
  const clock = new FakeClock();
  const a = await postForm(fetch, URL_, {}, { clock, timeoutMs: 1000 });
  assert.equal(a, { status: 200, body: undefined, text: "<html>captive portal</html>" });
  const b = await postForm(fetch, URL_, {}, { clock, timeoutMs: 1000 });
  assert.equal(b, { status: 400, body: undefined, text: "" });
  const c = await postForm(fetch, URL_, {}, { clock, timeoutMs: 1000 });
  assert.is(c.body, undefined, "bytes that are not UTF-8 are not JSON");
  assert.is(c.status, 200);
});

test("postForm() parses JSON whatever the Content-Type says", async () => {
  const { fetch } = scripted(new Response('{"error":"slow_down"}', { status: 400 }));
  const res = await postForm(fetch, URL_, {}, { clock: new FakeClock(), timeoutMs: 1000 });
  assert.equal(res.body, { error: "slow_down" });
});

test("postForm() refuses a declared Content-Length over the bound without reading", async () => {
  const { stream, stats } = endless(1024);
  const { fetch } = scripted(
    new Response(stream, { status: 200, headers: { "content-length": "1000000000" } }),
  );
  const e = await rejection(
    postForm(fetch, URL_, {}, { clock: new FakeClock(), timeoutMs: 1000, maxBytes: 4096 }),
  );
  assert.instance(e, ProtocolError);
  assert.is((e as ProtocolError).code, BODY_TOO_LARGE);
  assert.is((e as ProtocolError).status, 200);
  assert.match((e as Error).message, "larger than 4096 bytes");
  assert.is(stats.pulled, 0, "nothing was read");
  assert.ok(stats.cancelled, "the body was cancelled");
});

test("postForm() stops reading an endless body just past the bound", async () => {
  const { stream, stats } = endless(1000);
  const { fetch } = scripted(new Response(stream, { status: 200 }));
  const clock = new FakeClock();
  const e = await rejection(postForm(fetch, URL_, {}, { clock, timeoutMs: 1000, maxBytes: 4096 }));
  assert.instance(e, ProtocolError);
  assert.is((e as ProtocolError).code, BODY_TOO_LARGE);
  assert.ok(stats.pulled > 4096, `read past the bound (${stats.pulled})`);
  assert.ok(stats.pulled <= 4096 + 1000, `read at most one chunk past it (${stats.pulled})`);
  assert.ok(stats.cancelled, "the stream was cancelled");
  assert.is(clock.pending, 0);
});

test("postForm() accepts a body of exactly maxBytes and bounds at 64 KiB by default", async () => {
  const exact = "x".repeat(100);
  const big = endless(8192);
  const { fetch } = scripted(new Response(exact), new Response(big.stream));
  const clock = new FakeClock();
  const ok = await postForm(fetch, URL_, {}, { clock, timeoutMs: 1000, maxBytes: 100 });
  assert.is(ok.text, exact);
  assert.is(DEFAULT_MAX_BYTES, 65536);
  const e = await rejection(postForm(fetch, URL_, {}, { clock, timeoutMs: 1000 }));
  assert.is((e as ProtocolError).code, BODY_TOO_LARGE);
  assert.ok(big.stats.pulled <= 65536 + 8192, `${big.stats.pulled}`);
});

// ---------------------------------------------------------------------------------------------
// Time limit and cancellation

test("postForm() times out on the injected clock and aborts the fetch", async () => {
  const { fetch, signals } = hanging();
  const clock = new FakeClock();
  let settled = false;
  const outcome = rejection(
    postForm(fetch, `${URL_}?q=hidden`, {}, { clock, timeoutMs: 5000 }).finally(() => {
      settled = true;
    }),
  );
  await clock.advance(4999);
  assert.not.ok(settled, "still waiting 1 ms before the limit");
  assert.is(signals.length, 1);
  assert.not.ok(signals[0]!.aborted);
  await clock.advance(1);
  const e = await outcome;
  assert.instance(e, TransportError);
  assert.is((e as TransportError).kind, "timeout");
  assert.is((e as Error).message, `POST ${URL_} timed out after 5000 ms`);
  assert.ok(signals[0]!.aborted, "the fetch's signal was aborted");
  assert.is(clock.pending, 0);
});

test("postForm() times out while the body trickles, and cancels the body", async () => {
  const stats = { cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode('{"access'));
    },
    cancel() {
      stats.cancelled = true;
    },
  });
  const { fetch, sent } = scripted(new Response(stream, { status: 200 }));
  const clock = new FakeClock();
  const outcome = rejection(postForm(fetch, URL_, {}, { clock, timeoutMs: 2000 }));
  await clock.advance(2000);
  const e = await outcome;
  assert.is((e as TransportError).kind, "timeout");
  assert.ok(stats.cancelled, "the body stream was cancelled");
  assert.ok(sent[0]!.init.signal?.aborted);
});

test("postForm() rejects as aborted when the caller's signal fires, and cleans up", async () => {
  const { fetch, signals } = hanging();
  const clock = new FakeClock();
  const ac = new AbortController();
  const outcome = rejection(
    postForm(fetch, URL_, {}, { clock, timeoutMs: 60_000, signal: ac.signal }),
  );
  await clock.advance(10);
  ac.abort(new Error("logout"));
  const e = await outcome;
  assert.instance(e, TransportError);
  assert.is((e as TransportError).kind, "aborted");
  assert.is(((e as Error).cause as Error).message, "logout");
  assert.ok(signals[0]!.aborted);
  assert.is(clock.pending, 0, "the timer is gone");
});

test("postForm() does not send at all when the signal is already aborted", async () => {
  const { fetch, sent } = scripted(json({}));
  const e = await rejection(
    postForm(fetch, URL_, {}, {
      clock: new FakeClock(),
      timeoutMs: 1000,
      signal: AbortSignal.abort(),
    }),
  );
  assert.is((e as TransportError).kind, "aborted");
  assert.is(sent.length, 0);
});

test("postForm() refuses bad arguments with a coded TypeError", async () => {
  const { fetch, sent } = scripted();
  const clock = new FakeClock();
  const bad: Array<[string, number, number | undefined]> = [
    ["ftp://x/y", 1000, undefined],
    ["not a url", 1000, undefined],
    [URL_, 0, undefined],
    [URL_, Number.NaN, undefined],
    [URL_, 1000, 0],
    [URL_, 1000, 1.5],
  ];
  for (const [url, timeoutMs, maxBytes] of bad) {
    const e = await rejection(
      postForm(fetch, url, {}, {
        clock,
        timeoutMs,
        ...(maxBytes !== undefined ? { maxBytes } : {}),
      }),
    );
    assert.instance(e, TypeError);
    assert.is((e as { code?: string }).code, ERR_INVALID_ARG_VALUE);
  }
  assert.is(sent.length, 0);
});

test("postForm() turns a rejected fetch into a TransportError without the query string", async () => {
  const cause = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://auth.example/auth/O2/token?code=SECRETQUERY): " +
        "client error (Connect): tcp connect error: Connection refused (os error 111)",
    ),
  });
  const fetch: Fetch = () => Promise.reject(cause);
  const e = await rejection(
    postForm(fetch, `${URL_}?code=SECRETQUERY#frag`, {}, {
      clock: new FakeClock(),
      timeoutMs: 1000,
    }),
  );
  assert.instance(e, TransportError);
  const t = e as TransportError;
  assert.is(t.kind, "network");
  assert.is(t.url, URL_);
  assert.is(
    t.message,
    `POST ${URL_} failed: cannot connect (tcp connect error: Connection refused (os error 111))`,
  );
  for (const s of [t.message, String(t), t.stack ?? "", JSON.stringify(t)]) {
    assert.not.match(s, "SECRETQUERY");
  }
  assert.is(t.cause, cause);

  // A detail that names another URL (a proxy, a redirect) loses that URL's query string too.
  const proxied: Fetch = () =>
    Promise.reject(
      new Error("proxy http://proxy.example:3128/connect?token=SECRETQUERY refused the tunnel"),
    );
  const p = await rejection(
    postForm(proxied, URL_, {}, { clock: new FakeClock(), timeoutMs: 1000 }),
  ) as TransportError;
  assert.is(
    p.message,
    `POST ${URL_} failed: cannot connect (proxy http://proxy.example:3128/connect refused the tunnel)`,
  );
});

// ---------------------------------------------------------------------------------------------
// classifyFetchError() against real sockets on 127.0.0.1

/** Runs `fn` with a Deno.serve on 127.0.0.1 (TLS when `cert` is given), then shuts it down. */
async function withServer<T>(
  tls: { cert: string; key: string } | undefined,
  handler: (req: Request) => Response | Promise<Response>,
  fn: (port: number) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {}, ...(tls ?? {}) },
    handler,
  );
  try {
    return await fn(server.addr.port);
  } finally {
    ac.abort();
    await server.finished;
  }
}

function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function fetchError(url: string, client?: Deno.HttpClient): Promise<unknown> {
  try {
    const res = await (client ? fetch(url, { client }) : fetch(url));
    await res.body?.cancel();
  } catch (e) {
    return e;
  }
  assert.unreachable(`fetch ${url} succeeded`);
  return undefined;
}

const setClock = new FakeClock(); // 2026-11-24, after BUILD_TIME_FLOOR
const unsetClock = new FakeClock({ wall: 0 }); // 1970: no RTC, no NTP yet

test("classifyFetchError() calls https:// to a plain-HTTP server tls, clock_unset before the floor", async () => {
  await withServer(undefined, () => new Response("plain"), async (port) => {
    const e = await fetchError(`https://127.0.0.1:${port}/`);
    // Deno 2.9.6: TypeError "fetch failed", cause "error sending request for url
    // (https://127.0.0.1:PORT/): client error (Connect): received corrupt message of type
    // InvalidContentType"
    assert.instance(e, TypeError);
    assert.is(classifyFetchError(e, setClock), "tls");
    assert.is(classifyFetchError(e, unsetClock), "clock_unset");
  });
  assert.ok(setClock.now() >= BUILD_TIME_FLOOR && unsetClock.now() < BUILD_TIME_FLOOR);
});

test("classifyFetchError() calls a refused connection network, whatever the clock", async () => {
  const e = await fetchError(`http://127.0.0.1:${closedPort()}/`);
  // Deno 2.9.6: cause "... client error (Connect): tcp connect error: Connection refused (os
  // error 111)"
  assert.is(classifyFetchError(e, setClock), "network");
  assert.is(classifyFetchError(e, unsetClock), "network");
});

test("classifyFetchError() calls expired and not-yet-valid certificates clock_unset", async () => {
  const client = Deno.createHttpClient({ caCerts: [TEST_CA] });
  try {
    for (const cert of [CERT_EXPIRED, CERT_FUTURE]) {
      await withServer({ cert, key: TEST_KEY }, () => new Response("tls"), async (port) => {
        const e = await fetchError(`https://127.0.0.1:${port}/`, client);
        // Deno 2.9.6: "... invalid peer certificate: certificate expired: verification time
        // ... but certificate is not valid after 978307200 ..." and "... certificate not valid
        // yet: ... not valid before 3786912000 ..."
        assert.match(((e as Error).cause as Error).message, /invalid peer certificate/);
        assert.is(classifyFetchError(e, setClock), "clock_unset");
      });
    }
  } finally {
    client.close();
  }
});

test("classifyFetchError() calls an unknown issuer tls; a trusted certificate works", async () => {
  await withServer(
    { cert: CERT_VALID, key: TEST_KEY },
    () => Response.json({ ok: 1 }),
    async (port) => {
      const e = await fetchError(`https://127.0.0.1:${port}/`);
      // Deno 2.9.6: "... client error (Connect): invalid peer certificate: UnknownIssuer"
      assert.is(classifyFetchError(e, setClock), "tls");
      assert.is(classifyFetchError(e, unsetClock), "clock_unset");

      const client = Deno.createHttpClient({ caCerts: [TEST_CA] });
      try {
        const viaClient: Fetch = (input, init) => fetch(input, { ...init, client });
        const res = await postForm(viaClient, `https://127.0.0.1:${port}/token`, { a: "1" }, {
          clock: new FakeClock(),
          timeoutMs: 10_000,
        });
        assert.equal(res.body, { ok: 1 });
      } finally {
        client.close();
      }
    },
  );
});

test("classifyFetchError() sorts Deno's recorded texts and abort errors", () => {
  const denoError = (why: string) =>
    new TypeError("fetch failed", {
      cause: new Error(
        `error sending request for url (https://a.example/p): client error (Connect): ${why}`,
      ),
    });
  const cases: Array<[unknown, TransportKind]> = [
    [
      denoError("dns error: failed to lookup address information: Name or service not known"),
      "network",
    ],
    [denoError("tcp connect error: Network is unreachable (os error 101)"), "network"],
    [denoError("tcp connect error: Connection timed out (os error 110)"), "timeout"],
    [denoError("invalid peer certificate: UnknownIssuer"), "tls"],
    [denoError('invalid peer certificate: certificate not valid for name "a.example"'), "tls"],
    [
      denoError(
        "invalid peer certificate: certificate expired: verification time 1795555815 (UNIX)",
      ),
      "clock_unset",
    ],
    [denoError("invalid peer certificate: certificate not valid yet: ..."), "clock_unset"],
    [new DOMException("The signal has been aborted", "AbortError"), "aborted"],
    [new DOMException("Signal timed out.", "TimeoutError"), "timeout"],
    [new TypeError("fetch failed"), "network"],
    ["a string", "network"],
    [undefined, "network"],
  ];
  for (const [e, kind] of cases) {
    assert.is(classifyFetchError(e, setClock), kind, String((e as Error)?.cause ?? e));
  }
});

test("postForm() against real sockets: refused is network, a JSON answer parses", async () => {
  const e = await rejection(
    postForm(fetch, `http://127.0.0.1:${closedPort()}/auth/O2/token`, { a: "b" }, {
      clock: new FakeClock(),
      timeoutMs: 10_000,
    }),
  );
  assert.instance(e, TransportError);
  assert.is((e as TransportError).kind, "network");
  assert.match((e as Error).message, /^POST http:\/\/127\.0\.0\.1:\d+\/auth\/O2\/token failed: /);

  let seen = "";
  await withServer(undefined, async (req) => {
    seen = `${req.method} ${req.headers.get("content-type")} ${await req.text()}`;
    return Response.json({ error: "authorization_pending" }, { status: 400 });
  }, async (port) => {
    const res = await postForm(fetch, `http://127.0.0.1:${port}/t`, { grant_type: "device_code" }, {
      clock: new FakeClock(),
      timeoutMs: 10_000,
    });
    assert.equal(res.body, { error: "authorization_pending" });
    assert.is(res.status, 400);
  });
  assert.is(seen, "POST application/x-www-form-urlencoded grant_type=device_code");
});

test.run();
