/**
 * Child process of the memory bench: the runtime's floor. It does the runtime work of linkd's
 * refresh cycle with almost none of linkd's code, so the bench can say how much of the daemon's
 * memory is the runtime's and how much is linkd's. Args: broker port, token server port, flash
 * image path, cycles.
 *
 * What it keeps from a linkd refresh, each by the same runtime path linkd takes:
 * - an MQTT connection held open (raw CONNECT, then one PUBLISH of the token per cycle);
 * - per cycle, a form POST over a new TCP connection (Deno.connect, as src/net/http1.ts), the
 *   answer read to the end and parsed as JSON;
 * - a timer per cycle and the request's time limit by `AbortSignal.timeout` (src/timers.ts: not
 *   the global setTimeout, which loads Node compatibility);
 * - 4 KiB written to a flash image at a rotating offset, then `syncDataSync` (as the emulated
 *   NOR's flush), and `crypto.getRandomValues` for a nonce;
 * - a full collection after each cycle, as the daemon does (src/daemon/gc.ts).
 * What it leaves out is linkd: no crypto, CBOR, store, state machine, or MQTT client code.
 */
const [brokerPort, tokenPort, flashPath, cyclesArg] = Deno.args as [
  string,
  string,
  string,
  string,
];
const cycles = Number(cyclesArg);
const enc = new TextEncoder();
const dec = new TextDecoder();

function utf8Field(s: string): number[] {
  const b = enc.encode(s);
  return [b.length >> 8, b.length & 255, ...b];
}

function packet(type: number, body: number[]): Uint8Array {
  const head = [type];
  let n = body.length;
  do {
    let digit = n & 127;
    n >>= 7;
    if (n > 0) digit |= 128;
    head.push(digit);
  } while (n > 0);
  return new Uint8Array([...head, ...body]);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

const wait = (ms: number) =>
  new Promise<void>((resolve) =>
    AbortSignal.timeout(ms).addEventListener("abort", () => resolve(), { once: true })
  );

const broker = await Deno.connect({ hostname: "127.0.0.1", port: Number(brokerPort) });
// CONNECT, MQTT 5, clean start, keep-alive 60 s, no properties.
await writeAll(broker, packet(0x10, [...utf8Field("MQTT"), 5, 2, 0, 60, 0, ...utf8Field("floor")]));
const inbox = new Uint8Array(4096);
if (await broker.read(inbox) === null) throw new Error("the broker closed the connection");
const draining = (async () => {
  while (await broker.read(inbox) !== null) { /* CONNACK done; nothing else is expected */ }
})();

const flash = Deno.openSync(flashPath, { read: true, write: true });
const sector = new Uint8Array(4096);
const buffer = new Uint8Array(16 * 1024);
const form = `grant_type=refresh_token&refresh_token=Atzr%7C${"r".repeat(995)}&client_id=floor`;
for (let i = 0; i < cycles; i++) {
  await wait(1);
  const limit = AbortSignal.timeout(30_000);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(tokenPort) });
  await writeAll(
    conn,
    enc.encode(
      "POST /auth/o2/token HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n" +
        `Content-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`,
    ),
  );
  let answer = "";
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    answer += dec.decode(buffer.subarray(0, n), { stream: true });
  }
  conn.close();
  if (limit.aborted) throw new Error("the token server did not answer in time");
  const token = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as {
    access_token: string;
  };
  crypto.getRandomValues(sector.subarray(0, 24));
  sector.set(enc.encode(token.access_token).subarray(0, 2048), 24);
  flash.seekSync((i % 16) * sector.length, Deno.SeekMode.Start);
  flash.writeSync(sector);
  flash.syncDataSync();
  await writeAll(
    broker,
    packet(0x31, [...utf8Field("floor/token"), 0, ...enc.encode(token.access_token)]),
  );
  (globalThis as { gc?: () => void }).gc?.();
}
const status = Deno.readTextFileSync("/proc/self/status");
const hwmKb = Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? NaN);
broker.close();
await draining.catch(() => {});
flash.close();
console.log(JSON.stringify({ cycles, hwmKb }));
