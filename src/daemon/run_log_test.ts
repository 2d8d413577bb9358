/**
 * `linkd run`'s log and STATUS= against real peers: a provisioned device whose authorization
 * server is unreachable (a closed port on this machine) logs the failure with its code, at
 * level err, and tells systemd `error: network`; a real mosquitto carries the bus.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseConfig } from "../config.ts";
import { Device } from "../device.ts";
import { provision } from "../provision/provision.ts";
import { haveMosquitto, startMosquitto } from "../../test/support/broker.ts";
import type { Level } from "./log.ts";
import { runDaemon } from "./run.ts";

const run = haveMosquitto() || Deno.env.get("CI") ? test : test.skip;

/** A port nobody listens on: bound, then closed. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

run(
  "linkd run: an unreachable authorization server is logged (err, network) and in STATUS=",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "linkd-unreachable-" });
    const broker = await startMosquitto();
    try {
      const port = closedPort();
      const config = parseConfig(
        JSON.stringify({
          flash: { path: "flash.img" },
          keys: { otpPath: "otp.bin" },
          auth: {
            codepairUrl: `http://127.0.0.1:${port}/auth/o2/create/codepair`,
            tokenUrl: `http://127.0.0.1:${port}/auth/o2/token`,
          },
          display: { outputs: [] },
        }),
        `${dir}/linkd.json`,
      );
      const d = Device.open(config);
      provision(d, { serial: "SN-NET-1", productId: "p", clientId: "cid" }, () => 1);
      d.close();
      const stop = new AbortController();
      const lines: [string, Level | undefined][] = [];
      const status: string[] = [];
      const daemon = runDaemon({
        config,
        signal: stop.signal,
        log: (line, level) => lines.push([line, level]),
        onStatus: (s) => status.push(s),
        broker: { url: broker.url, protocolVersion: 5 },
      });
      for (let i = 0; i < 750 && !status.includes("error: network"); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      stop.abort();
      assert.is(await daemon, 0);
      const failures = lines.filter(([l]) => l.includes("network"));
      assert.equal(failures.map(([, level]) => level), ["err"], JSON.stringify(lines));
      assert.match(
        failures[0]![0],
        /^linkd: state error \(network\): Cannot reach the authorization server/,
      );
      assert.ok(status.includes("error: network"), `STATUS= got ${JSON.stringify(status)}`);
      // Every line has a level; the bus's connect is notice, the shutdown says offline.
      assert.ok(lines.every(([, level]) => level !== undefined), JSON.stringify(lines));
      assert.ok(lines.some(([l, level]) => /^bus: connected to /.test(l) && level === "notice"));
      assert.equal(lines.at(-1), ["linkd: state offline", "notice"]);
    } finally {
      await broker.stop();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

test.run();
