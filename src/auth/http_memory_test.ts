/**
 * Memory of postForm over http1Fetch (issue 11) when the authorization server's answer comes
 * in the smallest pieces it can: 65,536 one-byte chunks, and a Content-Length body written one
 * byte at a time. In a child process (test/support/http_memory_child.ts), with the launcher's V8
 * flags and with none, the peak resident memory may rise by a few MB at most: the body is held
 * in one buffer (ByteBuilder), never as one array per piece. Before, 65,536 one-byte chunks rose it by about
 * 32 MB under the flags and 77 MB without; a trickled Content-Length body by 5 and 16-23 MB.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { V8_FLAGS } from "../../scripts/runtime.ts";
import { delay, rawServer, readRequest, send } from "../../test/support/net.ts";

/** The bound the test holds the rise to: generous for a busy 2-core VM, far below 32 MB. */
const MAX_RISE_MB = 12;
const BODY_BYTES = 64 * 1024;

/** Writes a Content-Length body one byte per write, yielding between writes. */
async function trickle(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  await send(conn, [`HTTP/1.1 200 OK\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`]);
  const one = new Uint8Array([0x61]);
  for (let i = 0; i < BODY_BYTES; i++) {
    await conn.write(one);
    if (i % 64 === 0) await delay(0);
  }
}

async function answer(conn: Deno.TcpConn): Promise<void> {
  const path = /^POST (\S+)/.exec(await readRequest(conn))?.[1] ?? "";
  if (path === "/trickled") return await trickle(conn);
  const chunks = path === "/chunked" ? BODY_BYTES : 100;
  const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  await send(conn, [head + "1\r\na\r\n".repeat(chunks) + "0\r\n\r\n"]);
}

interface Figures {
  peakRiseKb: number;
  peakReset: boolean;
  textLength: number;
}

async function child(port: number, path: string, flags: string[]): Promise<Figures> {
  const child = new URL("../../test/support/http_memory_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...flags, child, String(port), path, String(BODY_BYTES)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(out.success, new TextDecoder().decode(out.stderr).slice(0, 800));
  return JSON.parse(text.split("\n").at(-1) ?? "") as Figures;
}

test("postForm() holds a 64 KiB answer in tiny pieces within a few MB, with and without the flags", async () => {
  if (Deno.build.os !== "linux") return; // the child reads /proc/self/status
  const server = rawServer(answer);
  const runs: Array<[string, Figures]> = [];
  try {
    for (const path of ["/chunked", "/trickled"]) {
      runs.push([
        `${path}, launcher's flags`,
        await child(server.port, path, [
          `--v8-flags=${V8_FLAGS.join(",")}`,
        ]),
      ]);
      runs.push([`${path}, no flags`, await child(server.port, path, [])]);
    }
  } finally {
    await server.close();
  }
  for (const [label, f] of runs) {
    console.log(`  ${label}: peak +${(f.peakRiseKb / 1024).toFixed(1)} MB`);
  }
  for (const [label, f] of runs) {
    const riseMb = f.peakRiseKb / 1024;
    assert.ok(riseMb < MAX_RISE_MB, `${label}: peak rose by ${riseMb.toFixed(1)} MB`);
    assert.is(f.textLength, BODY_BYTES, label);
  }
});

test.run();
