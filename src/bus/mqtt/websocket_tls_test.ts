/**
 * The ws:// and mqtts:// transports against Debian's real mosquitto (a websockets listener,
 * and a TLS listener with a throwaway CA made by openssl), and ws:// against a scripted
 * WebSocket server (Deno.serve) for what a broker should never do.
 *
 * mosquitto 2.0.11 quirks met here: a websockets listener alone fails to start ("Unable to
 * start any listening sockets"), so it rides beside the TCP one; without `socket_domain ipv4`
 * it ignores the bind address and listens on every interface; it starts listening a moment
 * after the TCP listener does; it sends over websockets at about 4 kB per 100 ms (paho sees
 * the same), so big messages only go towards it here.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { freePort, type Mosquitto, startMosquitto } from "../../../test/support/broker.ts";
import { Peer } from "../../../test/support/bus.ts";
import { MqttClient } from "./client.ts";
import { MqttError } from "./errors.ts";
import { encodePacket } from "./packets.ts";
import type { IncomingMessage } from "./types.ts";
import { bytes, rejection, text, within } from "../../../test/support/mqtt.ts";

const cleanups: (() => void | Promise<void>)[] = [];
test.after.each(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function canConnect(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

async function listening(port: number): Promise<boolean> {
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    if (await canConnect(port)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA and a server certificate for 127.0.0.1, signed by it (PEM files in `dir`). */
async function makeCertificates(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
    "-days",
    "1",
    "-subj",
    "/CN=linkd test CA",
  ]);
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    `${dir}/server.key`,
    "-out",
    `${dir}/server.csr`,
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(
    `${dir}/ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    `${dir}/server.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/server.pem`,
    "-days",
    "1",
    "-extfile",
    `${dir}/ext`,
  ]);
}

const message = (e: unknown) => e instanceof Error ? e.message : String(e);

// A broker with a websockets listener, if this mosquitto can (beside its TCP one).
const wsPort = freePort();
let wsBroker: Mosquitto | null = null;
let skipWs = "";
try {
  wsBroker = await startMosquitto({
    config: `listener ${wsPort} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4`,
  });
  if (!(await listening(wsPort))) skipWs = "the websockets listener never accepted";
} catch (e) {
  skipWs = `mosquitto refused a websockets listener: ${message(e)}`;
}

// A broker with a TLS listener whose certificate the test CA signed.
const tlsPort = freePort();
const certs = await Deno.makeTempDir({ prefix: "linkd-mqtt-tls-" });
let tlsBroker: Mosquitto | null = null;
let skipTls = "";
try {
  await makeCertificates(certs);
  tlsBroker = await startMosquitto({
    config: `listener ${tlsPort} 127.0.0.1\ncertfile ${certs}/server.pem\n` +
      `keyfile ${certs}/server.key`,
  });
  if (!(await listening(tlsPort))) skipTls = "the TLS listener never accepted";
} catch (e) {
  skipTls = `no TLS listener: ${message(e)}`;
}
if (skipWs) console.warn(`SKIPPING the mosquitto websockets test: ${skipWs}`);
if (skipTls) console.warn(`SKIPPING the mosquitto TLS tests: ${skipTls}`);

test.after(async () => {
  await wsBroker?.stop();
  await tlsBroker?.stop();
  await Deno.remove(certs, { recursive: true }).catch(() => {});
});

(skipWs ? test.skip : test)(
  "ws:// to mosquitto: publish 100 kB, subscribe, receive 12 kB",
  async () => {
    const b = wsBroker!;
    const peer = await Peer.open({ port: b.port });
    cleanups.push(() => peer.close());
    await peer.subscribe("ws/#", { qos: 1 });
    const messages: IncomingMessage[] = [];
    const client = await within(MqttClient.connect({
      url: `ws://127.0.0.1:${wsPort}/mqtt`,
      protocolVersion: 5,
      clientId: "ws-client",
      keepaliveS: 30,
      onMessage: (m) => messages.push(m),
    }));
    cleanups.push(() => client.destroy());
    assert.equal(await within(client.subscribe("in/#", { qos: 1 })), [1]);
    const big = new Uint8Array(100_000).map((_, i) => i % 251);
    assert.is(await within(client.publish("ws/out", big, { qos: 1 })), 0);
    const m = await peer.waitMessage((x) => x.topic === "ws/out");
    assert.is(m.hex.length, 200_000);
    // mosquitto sends over websockets about 4 kB per 100 ms: a smaller message this way.
    const medium = big.subarray(0, 12_000);
    await peer.publish({ topic: "in/x", payload: medium, qos: 1 });
    await peer.waitFor(() => messages.length === 1 ? true : undefined);
    assert.equal(messages[0]!.payload, medium);
    await within(client.disconnect());
    assert.is(await within(client.closed), null);
  },
);

(skipTls ? test.skip : test)(
  "mqtts:// to mosquitto with the test CA: publish and subscribe",
  async () => {
    const ca = await Deno.readTextFile(`${certs}/ca.pem`);
    const messages: IncomingMessage[] = [];
    const client = await within(MqttClient.connect({
      url: `mqtts://127.0.0.1:${tlsPort}`,
      protocolVersion: 5,
      clientId: "tls-client",
      keepaliveS: 30,
      caCerts: [ca],
      onMessage: (m) => messages.push(m),
    }));
    cleanups.push(() => client.destroy());
    await within(client.subscribe("tls/#", { qos: 1 }));
    assert.is(await within(client.publish("tls/x", text("over TLS"), { qos: 1 })), 0);
    const deadline = performance.now() + 3000;
    while (messages.length === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(messages.map((m) => m.topic), ["tls/x"]);
    await within(client.disconnect());
  },
);

(skipTls ? test.skip : test)("mqtts:// without the CA is refused with network", async () => {
  const e = await rejection(MqttClient.connect({
    url: `mqtts://127.0.0.1:${tlsPort}`,
    protocolVersion: 5,
    clientId: "tls-untrusted",
    keepaliveS: 30,
  }));
  assert.instance(e, MqttError);
  assert.is((e as MqttError).code, "network", String(e));
  assert.ok((e as MqttError).cause instanceof Error);
});

/** A WebSocket server that runs `script` for each connection. */
function wsServer(
  protocol: string | null,
  script: (ws: WebSocket) => void,
): { url: string; close: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(
      req,
      protocol === null ? {} : { protocol },
    );
    socket.binaryType = "arraybuffer";
    socket.onopen = () => script(socket);
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/mqtt`,
    close: () => server.shutdown(),
  };
}

test("ws://: a CONNACK split over WebSocket messages is read; a text message is a protocol error", async () => {
  const s = wsServer("mqtt", (ws) => {
    ws.onmessage = (ev) => {
      const b = new Uint8Array(ev.data as ArrayBuffer);
      if (b[0] !== 0x10) return;
      ws.send(bytes("20"));
      ws.send(bytes("03 00 00"));
      ws.send(bytes("00 d0 00")); // the rest of the CONNACK, and a PINGRESP
      setTimeout(() => ws.send("not binary"), 20);
    };
  });
  cleanups.push(() => s.close());
  const client = await within(MqttClient.connect({
    url: s.url,
    protocolVersion: 5,
    clientId: "ws",
    keepaliveS: 0,
  }));
  const e = await within(client.closed);
  assert.is(e?.code, "protocol");
  assert.is(e?.reason, "text_frame");
});

test("ws://: a server that does not select subprotocol mqtt is refused", async () => {
  const s = wsServer(null, (ws) => {
    ws.onmessage = () => ws.send(encodePacket({ type: "pingresp" }, 5));
  });
  cleanups.push(() => s.close());
  const e = await rejection(MqttClient.connect({
    url: s.url,
    protocolVersion: 5,
    clientId: "ws",
    keepaliveS: 0,
  }));
  assert.instance(e, MqttError);
  assert.is((e as MqttError).code, "network", String(e));
});

test.run();
