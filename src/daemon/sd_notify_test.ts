import { test } from "uvu";
import * as assert from "uvu/assert";
import { systemClock } from "../clock.ts";
import { MAX_NOTIFY_BYTES, notifyAddress, SystemdNotifier, systemdNotifier } from "./sd_notify.ts";
import { startWatchdog } from "./watchdog.ts";

const PYTHON = "/usr/bin/python3";

/**
 * A real notify socket: a Python AF_UNIX SOCK_DGRAM listener (as systemd's) that prints each
 * datagram it receives as one JSON line. It ends when its stdin closes.
 */
const LISTENER = `
import json, os, select, socket, sys
p = sys.argv[1]
kind = socket.SOCK_STREAM if sys.argv[2] == "stream" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_UNIX, kind)
s.bind("\\0" + p[1:] if p.startswith("@") else p)
if kind == socket.SOCK_STREAM:
    s.listen(1)
print("LISTENING", flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r and not sys.stdin.read(1):
        break
    if s in r and kind == socket.SOCK_DGRAM:
        print(json.dumps(s.recv(65536).decode("utf-8", "replace")), flush=True)
`;

class Listener {
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  #wake: (() => void) | null = null;
  readonly #reading: Promise<void>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#reading = this.#read();
  }

  static async start(path: string, kind: "dgram" | "stream" = "dgram"): Promise<Listener> {
    const child = new Deno.Command(PYTHON, {
      args: ["-c", LISTENER, path, kind],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const l = new Listener(child);
    assert.is(await l.#next(5000), "LISTENING");
    return l;
  }

  async #read(): Promise<void> {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of this.#child.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        this.#lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        this.#wake?.();
      }
    }
    this.#wake?.();
  }

  async #next(timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      let t: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#wake = r;
        t = setTimeout(r, left);
      });
      clearTimeout(t);
      this.#wake = null;
    }
    return this.#lines.shift()!;
  }

  /** The next datagram received, or null after `timeoutMs`. */
  async message(timeoutMs = 5000): Promise<string | null> {
    const line = await this.#next(timeoutMs);
    return line === null ? null : JSON.parse(line) as string;
  }

  async stop(): Promise<void> {
    await this.#child.stdin.close();
    await this.#child.status;
    await this.#reading;
  }
}

function envOf(vars: Record<string, string>): (n: string) => string | undefined {
  return (n) => vars[n];
}

async function tempSocketPath(): Promise<{ dir: string; path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "linkd-sdnotify-test-" });
  return { dir, path: `${dir}/notify` };
}

test("no notifier when NOTIFY_SOCKET is unset or empty", () => {
  assert.is(systemdNotifier(envOf({})), null);
  assert.is(systemdNotifier(envOf({ NOTIFY_SOCKET: "" })), null);
  assert.ok(systemdNotifier(envOf({ NOTIFY_SOCKET: "/run/systemd/notify" })));
});

test("notifyAddress: sockaddr_un for paths and abstract names, reasons otherwise", () => {
  const p = notifyAddress("/run/systemd/notify");
  assert.instance(p, Uint8Array);
  const a = p as Uint8Array;
  assert.is(new DataView(a.buffer).getUint16(0, true), 1); // AF_UNIX (x86_64/aarch64: LE)
  assert.is(new TextDecoder().decode(a.subarray(2, a.length - 1)), "/run/systemd/notify");
  assert.is(a[a.length - 1], 0);
  const ab = notifyAddress("@linkd/notify") as Uint8Array;
  assert.is(ab.length, 2 + "@linkd/notify".length);
  assert.is(ab[2], 0);
  assert.is(new TextDecoder().decode(ab.subarray(3)), "linkd/notify");
  assert.type(notifyAddress("relative/notify"), "string");
  assert.type(notifyAddress("vsock:2:1234"), "string");
  assert.type(notifyAddress("@"), "string");
  assert.type(notifyAddress("/" + "x".repeat(120)), "string");
  assert.type(notifyAddress("/a\0b"), "string");
});

test("READY=1 and WATCHDOG=1 arrive on a real notify socket (FFI)", async () => {
  const { dir, path } = await tempSocketPath();
  const l = await Listener.start(path);
  try {
    const n = systemdNotifier(envOf({ NOTIFY_SOCKET: path }))!;
    assert.is(await n.notify("READY=1"), true, n.lastError);
    assert.is(n.mechanism, "ffi");
    assert.is(n.lastError, undefined);
    assert.is(await l.message(), "READY=1");
    assert.is(await n.notify("WATCHDOG=1"), true, n.lastError);
    assert.is(await l.message(), "WATCHDOG=1");
    const multi = "STATUS=linked, token valid for 3599 s\nREADY=1";
    assert.is(await n.notify(multi), true);
    assert.is(await l.message(), multi);
    n.close();
  } finally {
    await l.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

test("the abstract namespace (@name) works", async () => {
  const name = `@linkd-test-${Deno.pid}-${Date.now()}`;
  const l = await Listener.start(name);
  try {
    const n = systemdNotifier(envOf({ NOTIFY_SOCKET: name }))!;
    assert.is(await n.notify("READY=1"), true, n.lastError);
    assert.is(await l.message(), "READY=1");
    n.close();
  } finally {
    await l.stop();
  }
});

test("the watchdog's WATCHDOG=1 pings arrive on a real socket at WATCHDOG_USEC/2", async () => {
  const { dir, path } = await tempSocketPath();
  const l = await Listener.start(path);
  const stop = new AbortController();
  try {
    const n = systemdNotifier(envOf({ NOTIFY_SOCKET: path }))!;
    const t0 = performance.now();
    const wd = startWatchdog(n, envOf({ WATCHDOG_USEC: "200000" }), systemClock, stop.signal);
    assert.ok(wd);
    assert.is(wd!.intervalMs, 100);
    assert.is(await l.message(), "WATCHDOG=1");
    assert.is(await l.message(), "WATCHDOG=1");
    assert.is(await l.message(), "WATCHDOG=1");
    const took = performance.now() - t0;
    assert.ok(took >= 290 && took < 2000, `three pings took ${took} ms`);
    stop.abort();
    await wd!.done;
    assert.is(await l.message(250), null, "no ping after the abort");
    n.close();
  } finally {
    stop.abort();
    await l.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

test("failures return false with a reason and never throw", async () => {
  const { dir, path } = await tempSocketPath();
  try {
    const missing = new SystemdNotifier(path);
    assert.is(await missing.notify("READY=1"), false);
    assert.match(missing.lastError ?? "", "ENOENT");

    const stream = await Listener.start(path, "stream");
    try {
      const n = new SystemdNotifier(path);
      assert.is(await n.notify("READY=1"), false);
      assert.match(n.lastError ?? "", "EPROTOTYPE");
      n.close();
    } finally {
      await stream.stop();
    }

    const relative = new SystemdNotifier("run/notify");
    assert.is(await relative.notify("READY=1"), false);
    assert.match(relative.lastError ?? "", "absolute");

    const ok = new SystemdNotifier("/run/systemd/notify");
    assert.is(await ok.notify(""), false);
    assert.is(await ok.notify("X".repeat(MAX_NOTIFY_BYTES + 1)), false);
    assert.match(ok.lastError ?? "", "exceeds");

    const none = new SystemdNotifier(path, { mechanism: "none" });
    assert.is(await none.notify("READY=1"), false);
    assert.match(none.lastError ?? "", "--allow-ffi");
    missing.close();
    missing.close(); // twice is fine
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs a script using sd_notify.ts in a child Deno with `flags`; returns its stdout line. */
async function inChild(flags: string[], socket: string): Promise<string> {
  const mod = new URL("./sd_notify.ts", import.meta.url).href;
  const dir = await Deno.makeTempDir({ prefix: "linkd-sdnotify-child-" });
  const script = `${dir}/child.ts`;
  await Deno.writeTextFile(
    script,
    `import { systemdNotifier } from ${JSON.stringify(mod)};
const n = systemdNotifier((k) => Deno.env.get(k))!;
const ok = await n.notify("READY=1");
n.close();
console.log(JSON.stringify({ ok, mechanism: n.mechanism ?? null, error: n.lastError ?? null }));
`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-config", ...flags, script],
      env: { NOTIFY_SOCKET: socket, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.is(out.code, 0, new TextDecoder().decode(out.stderr));
    return text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

test("without --allow-ffi: --unstable-net falls back to Deno.listenDatagram; neither is false", async () => {
  const { dir, path } = await tempSocketPath();
  const l = await Listener.start(path);
  try {
    const viaNet = JSON.parse(
      await inChild([
        "--unstable-net",
        "--allow-env",
        "--allow-read",
        "--allow-write",
        "--allow-net",
      ], path),
    );
    assert.equal(viaNet, { ok: true, mechanism: "unstable-net", error: null });
    assert.is(await l.message(), "READY=1");

    const viaFfi = JSON.parse(await inChild(["--allow-env", "--allow-ffi"], path));
    assert.equal(viaFfi, { ok: true, mechanism: "ffi", error: null });
    assert.is(await l.message(), "READY=1");

    const neither = JSON.parse(await inChild(["--allow-env"], path));
    assert.is(neither.ok, false);
    assert.is(neither.mechanism, "none");
    assert.match(neither.error, "--allow-ffi");
    assert.is(await l.message(300), null);
  } finally {
    await l.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

test.run();
