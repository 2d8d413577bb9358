/**
 * An in-process MQTT broker (aedes) on 127.0.0.1, for the demo when no broker is configured.
 * The speaker and the tests use mosquitto (firmware/mosquitto).
 *
 * Limitation: aedes 1.2.0 speaks MQTT 3.1.1 only. Its CONNECT handler answers protocol level 5
 * with CONNACK return code 1 (unacceptable protocol version), and its README lists MQTT 5.0 as
 * "not support yet". So through it linkd's bus runs with `protocolVersion: 4` (the
 * `protocolVersion` this function returns): topics, CBOR payloads, retained flags, QoS 1 and
 * the last will are the same, but there is no message expiry on the token, and commands are
 * served but never answered (MQTT 3.1.1 has no response topic or correlation data). It has no
 * passwords and no ACL either: anyone on the machine can read the token. Demo only.
 */
import { invalidArgument } from "../../src/text.ts";
import net from "node:net";
import { Aedes } from "aedes";

export interface EmbeddedBroker {
  url: string;
  port: number;
  /** The MQTT protocol level to connect with: 4 (3.1.1), see the limitation above. */
  protocolVersion: 4;
  close(): Promise<void>;
}

/** Starts aedes on 127.0.0.1 (`port`, default a free one). */
export async function startEmbeddedBroker(
  options: { port?: number } = {},
): Promise<EmbeddedBroker> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidArgument(`Embedded broker port ${port} is not a TCP port`);
  }
  const aedes = await Aedes.createBroker();
  const server = net.createServer((socket) => {
    aedes.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw e;
  }
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  let closing: Promise<void> | null = null;
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    protocolVersion: 4,
    close() {
      closing ??= (async () => {
        await new Promise<void>((r) => aedes.close(() => r()));
        await new Promise<void>((r) => server.close(() => r()));
      })();
      return closing;
    },
  };
}
