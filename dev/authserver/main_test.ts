import { test } from "uvu";
import * as assert from "uvu/assert";
import { post } from "../../test/support/authserver.ts";
import { DEFAULT_CLIENT_ID, parseArgs } from "./main.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

test("parseArgs() reads clients with scopes, interval, lifetimes, port, flags", () => {
  const o = parseArgs([
    "--port",
    "8123",
    "--client",
    "dev1:alexa:all,music::library:read",
    "--client=dev2",
    "--web-client",
    "web1:profile",
    "--interval=2",
    "--code-lifetime",
    "30",
    "--token-lifetime",
    "120",
    "--approve",
    "--json",
  ]);
  assert.is(o.port, 8123);
  assert.ok(o.approve);
  assert.ok(o.json);
  assert.equal(o.clients, [
    {
      clientId: "dev1",
      enabledScopes: ["alexa:all", "music::library:read"],
      interval: 2,
      codeLifetime: 30,
      tokenLifetime: 120,
    },
    { clientId: "dev2", interval: 2, codeLifetime: 30, tokenLifetime: 120 },
    {
      clientId: "web1",
      enabledScopes: ["profile"],
      type: "web",
      interval: 2,
      codeLifetime: 30,
      tokenLifetime: 120,
    },
  ]);
});

test("parseArgs() defaults to one device client on any free port", () => {
  assert.equal(parseArgs([]), {
    port: 0,
    clients: [{ clientId: DEFAULT_CLIENT_ID }],
    approve: false,
    json: false,
    help: false,
  });
});

test("parseArgs() refuses mistakes with one line", () => {
  for (
    const args of [
      ["--port", "x"],
      ["--port", "70000"],
      ["--port", "1\n2"],
      ["--interval", "0"],
      ["--interval"],
      ["--client", ":alexa:all"],
      ["--client", "c:"],
      ["--nope"],
      ["--nope=1"],
      ["-x"],
      ["stray"],
      ["two\nlines"],
      ["--approve=no"],
      ["--json=false"],
      ["--refusal-style", "xml"],
      ["--refusal-style"],
      ["--refresh-refusal", "invalid_grant"],
      ["--refresh-refusal=invalid_client\n"],
    ]
  ) {
    assert.throws(
      () => parseArgs(args),
      (e: Error) => !e.message.includes("\n") && e.message.length > 0,
      JSON.stringify(args),
    );
  }
});

test("parseArgs() gives every client the refusal style and refresh refusal", () => {
  const o = parseArgs([
    "--client",
    "dev1",
    "--web-client=web1",
    "--refusal-style",
    "html",
    "--refresh-refusal=unauthorized_client",
  ]);
  assert.equal(o.clients, [
    { clientId: "dev1", refusalStyle: "html", refreshRefusal: "unauthorized_client" },
    { clientId: "web1", type: "web", refusalStyle: "html", refreshRefusal: "unauthorized_client" },
  ]);
  assert.equal(parseArgs(["--refusal-style=text"]).clients, [
    { clientId: DEFAULT_CLIENT_ID, refusalStyle: "text" },
  ]);
  for (const e of ["invalid_client", "invalid_request", "unsupported_grant_type"]) {
    assert.is(parseArgs(["--refresh-refusal", e]).clients[0]!.refreshRefusal, e);
  }
});

/** Collects a child's output; `line()` resolves with its first line as soon as it is printed. */
function collect(stream: ReadableStream<Uint8Array>) {
  let text = "";
  let ended = false;
  let wake = () => {};
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      wake();
    }
    ended = true;
    wake();
  })();
  return {
    async line(): Promise<string> {
      while (!text.includes("\n") && !ended) await new Promise<void>((r) => wake = r);
      return text.split("\n")[0]!;
    },
    async all(): Promise<string> {
      await done;
      return text;
    },
  };
}

test("deno task authserver: prints its URLs, serves a link with --approve, exits 0 on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "--json",
      "--client",
      "cli1:alexa:all",
      "--approve",
      "--interval=1",
      "--refusal-style=html",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = collect(child.stdout);
  try {
    const info = JSON.parse(await stdout.line());
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.is(info.lwa.codepairUrl, `${info.url}/auth/O2/create/codepair`);
    assert.is(info.rfc8628.tokenUrl, `${info.url}/oauth2/token`);
    assert.is(info.verificationUrl, `${info.url}/code`);
    assert.is(info.profileUrl, `${info.url}/user/profile`);
    assert.equal(info.clients, [{
      clientId: "cli1",
      type: "device",
      enabledScopes: ["alexa:all"],
      refusalStyle: "html",
      refreshRefusal: null,
    }]);
    const refused = await fetch(info.rfc8628.codepairUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "client_id=cli1&scope=music%3A%3Acatalog",
    });
    assert.is(refused.status, 400);
    assert.match(await refused.text(), "400 Bad Request - An unknown scope was requested");
    const pair = await post(info.rfc8628.codepairUrl, { client_id: "cli1" });
    assert.is(pair.body["interval"], 1);
    await new Promise((r) => setTimeout(r, 1000));
    const t = await post(info.rfc8628.tokenUrl, {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      device_code: pair.body["device_code"] as string,
      client_id: "cli1",
    });
    assert.is(t.status, 200, JSON.stringify(t.body));
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  const rest = await stdout.all();
  assert.is(status.code, 0);
  assert.not.match(rest, "Atz", "a token was printed");
  await child.stderr.cancel();
});

test("deno task authserver: a bad argument or an unknown flag exits 64 with one line on stderr", async () => {
  for (
    const [args, named] of [
      [["--port", "nope"], "--port"],
      [["--frobnicate"], "--frobnicate"],
      [["--refusal-style", "xml"], "--refusal-style"],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
    }).output();
    assert.is(out.code, 64);
    assert.is(out.stdout.length, 0);
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.is(err.split("\n").length, 1, err);
    assert.match(err, named);
    assert.match(err, /^authserver: .*; see 'deno task authserver --help'$/);
  }
});

test("parseArgs() words an unknown option or a stray argument as git does", () => {
  const message = (args: string[]) => {
    try {
      parseArgs(args);
    } catch (e) {
      return (e as Error).message;
    }
    return assert.unreachable(JSON.stringify(args));
  };
  assert.is(message(["--prot", "1"]), "Unknown option '--prot'");
  assert.is(message(["--prot=1"]), "Unknown option '--prot'");
  assert.is(message(["-x"]), "Unknown option '-x'");
  assert.is(message(["stray"]), "Unexpected argument 'stray'");
  assert.is(message(["two\nlines"]), "Unexpected argument 'two\\nlines'");
});

test.run();
