/**
 * Byte transports for MQTT, chosen by URL scheme: `mqtt://` (TCP, port 1883, `Deno.connect`),
 * `mqtts://` (TLS, 8883, `Deno.connectTls`), `ws://` (80) and `wss://` (443) with Deno's
 * WebSocket and subprotocol `mqtt` (path from the URL, default `/`).
 *
 * A transport pushes what it reads into a sink, one chunk at a time, and calls `end` once.
 * Writes are serialized (a packet is never interleaved with another) and a short write is
 * continued until every byte is out. A WebSocket message that is not binary is a protocol error.
 */
import { invalidArgument } from "../../text.ts";
import { MqttError } from "./errors.ts";

export interface TransportSink {
  /** A chunk read; valid only during the call. */
  data(chunk: Uint8Array): void;
  /** The transport is gone: null for an orderly end, else why. Called once. */
  end(error: Error | null): void;
}

export interface Transport {
  start(sink: TransportSink): void;
  /** Writes all of `bytes` after every earlier write; rejects once the transport failed. */
  write(bytes: Uint8Array): Promise<void>;
  /** After the queued writes: no more writes (TCP FIN, WebSocket close frame). */
  closeWrite(): Promise<void>;
  /** Closes now. Idempotent. */
  close(): void;
}

export interface BrokerAddress {
  scheme: "mqtt" | "mqtts" | "ws" | "wss";
  hostname: string;
  port: number;
  /** For ws/wss: the URL to open (no credentials). */
  url: string;
  /** `host:port`, for messages. */
  display: string;
}

/** Parses a broker URL; a TypeError for anything else (the URL is not echoed: it may hold secrets). */
export function parseBrokerUrl(url: string): BrokerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidArgument("Invalid ConnectOptions.url: not a URL");
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme !== "mqtt" && scheme !== "mqtts" && scheme !== "ws" && scheme !== "wss") {
    throw invalidArgument("Invalid ConnectOptions.url: the scheme is not mqtt, mqtts, ws or wss");
  }
  if (u.username !== "" || u.password !== "") {
    throw invalidArgument(
      "Invalid ConnectOptions.url: credentials belong in username and password, not the URL",
    );
  }
  if (u.hostname === "") throw invalidArgument("Invalid ConnectOptions.url: no host");
  const defaults = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };
  const port = u.port === "" ? defaults[scheme] : Number(u.port);
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const isWs = scheme === "ws" || scheme === "wss";
  return {
    scheme,
    hostname,
    port,
    url: isWs ? `${scheme}://${u.host}${u.pathname}${u.search}` : "",
    display: `${u.hostname}:${port}`,
  };
}

export interface OpenOptions {
  /** Aborts the connection attempt. */
  signal: AbortSignal;
  /** Extra root certificates (PEM) for mqtts. */
  caCerts?: string[];
}

/** Opens the transport for `ep`; rejects with the Deno error (or the signal's reason). */
export async function openTransport(ep: BrokerAddress, o: OpenOptions): Promise<Transport> {
  switch (ep.scheme) {
    case "mqtt": {
      const conn = await Deno.connect({ hostname: ep.hostname, port: ep.port, signal: o.signal });
      return connTransport(conn);
    }
    case "mqtts": {
      // Deno.connectTls takes no signal: connect with one, then start TLS on that socket, and
      // close it when the attempt is given up, also in the middle of the handshake (a listener
      // that never speaks TLS must not keep a socket per attempt).
      const tcp = await Deno.connect({ hostname: ep.hostname, port: ep.port, signal: o.signal });
      let conn: Deno.TlsConn | null = null;
      const onAbort = () => {
        try {
          (conn ?? tcp).close();
        } catch { /* already closed */ }
      };
      o.signal.addEventListener("abort", onAbort, { once: true });
      try {
        if (o.signal.aborted) throw o.signal.reason;
        conn = await Deno.startTls(tcp, {
          hostname: ep.hostname,
          ...(o.caCerts ? { caCerts: o.caCerts } : {}),
        });
        if (o.signal.aborted) throw o.signal.reason;
        await conn.handshake(); // certificate errors surface here, not at the first read
        if (o.signal.aborted) throw o.signal.reason;
      } catch (e) {
        onAbort();
        throw e;
      } finally {
        o.signal.removeEventListener("abort", onAbort);
      }
      return connTransport(conn);
    }
    case "ws":
    case "wss":
      return webSocketTransport(await openWebSocket(ep.url, o.signal));
  }
}

const READ_CHUNK = 16 * 1024;

/** The writing half of `conn`-like objects; the tests give it short writes. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

/** A transport over a TCP or TLS connection. */
export function connTransport(conn: ByteConn): Transport {
  let closed = false;
  let failed: Error | null = null;
  let chain: Promise<void> = Promise.resolve();

  const writeAll = async (bytes: Uint8Array) => {
    if (failed) throw failed;
    let off = 0;
    try {
      while (off < bytes.length) {
        const n = await conn.write(bytes.subarray(off));
        if (n <= 0) throw new Error("Cannot write to the connection: nothing written");
        off += n;
      }
    } catch (e) {
      failed = e instanceof Error ? e : new Error("Cannot write to the connection");
      throw failed;
    }
  };

  const enqueue = (step: () => Promise<void>): Promise<void> => {
    const p = chain.then(step);
    chain = p.catch(() => {});
    return p;
  };

  const t: Transport = {
    start(sink) {
      (async () => {
        const buf = new Uint8Array(READ_CHUNK);
        let error: Error | null = null;
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null || closed) break;
            sink.data(buf.subarray(0, n));
            if (closed) break;
          }
        } catch (e) {
          if (!closed) error = e instanceof Error ? e : new Error("Cannot read the connection");
        }
        t.close();
        sink.end(error);
      })();
    },
    write(bytes) {
      return enqueue(() => writeAll(bytes));
    },
    closeWrite() {
      return enqueue(async () => {
        if (failed) throw failed;
        await conn.closeWrite();
      });
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
  return t;
}

/** Opens a WebSocket with subprotocol `mqtt`; rejects unless the server selected it. */
export function openWebSocket(url: string, signal: AbortSignal): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const ws = new WebSocket(url, "mqtt");
    ws.binaryType = "arraybuffer";
    const done = () => {
      ws.onopen = ws.onerror = ws.onclose = null;
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      ws.close();
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort);
    ws.onopen = () => {
      done();
      if (ws.protocol !== "mqtt") {
        ws.close();
        reject(new Error("Cannot open the WebSocket: the server did not select subprotocol mqtt"));
        return;
      }
      resolve(ws);
    };
    ws.onerror = (ev) => {
      done();
      const message = ev instanceof ErrorEvent ? ev.message : "error";
      reject(new Error(`Cannot open the WebSocket: ${message}`));
    };
    ws.onclose = (ev) => {
      done();
      reject(new Error(`Cannot open the WebSocket: closed (${ev.code})`));
    };
  });
}

/** A transport over an open WebSocket: one binary message per packet written. */
export function webSocketTransport(ws: WebSocket): Transport {
  let ended = false;
  let sink: TransportSink | null = null;
  const end = (error: Error | null) => {
    if (ended) return;
    ended = true;
    ws.onmessage = ws.onerror = ws.onclose = null;
    sink?.end(error);
  };
  return {
    start(s) {
      sink = s;
      ws.onmessage = (ev: MessageEvent) => {
        if (ended) return;
        if (!(ev.data instanceof ArrayBuffer)) {
          try {
            ws.close(1002);
          } catch { /* closing */ }
          end(
            new MqttError("protocol", "Cannot read the WebSocket: a text message", {
              reason: "text_frame",
              reasonCode: 0x81,
            }),
          );
          return;
        }
        s.data(new Uint8Array(ev.data));
      };
      ws.onerror = (ev) => {
        end(new Error(`WebSocket failed: ${ev instanceof ErrorEvent ? ev.message : "error"}`));
      };
      ws.onclose = () => end(null);
      if (ws.readyState !== WebSocket.OPEN) end(new Error("WebSocket closed"));
    },
    write(bytes) {
      if (ws.readyState !== WebSocket.OPEN) {
        return Promise.reject(new Error("Cannot write to the WebSocket: closed"));
      }
      try {
        ws.send(bytes);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve();
    },
    closeWrite() {
      try {
        ws.close(1000);
      } catch { /* closing */ }
      return Promise.resolve();
    },
    close() {
      try {
        ws.close(1000);
      } catch { /* closing */ }
      end(null);
    },
  };
}
