/**
 * `linkd run` on a provisioned device whose flash cannot give its identity: it publishes state
 * `error` with code `store_damaged` (retained, as every state) to a real mosquitto, read by an
 * independent peer (paho-mqtt), logs it, and writes nothing to the flash or the OTP.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { equal } from "../bytes.ts";
import { Peer, type PeerMessage } from "../../test/support/bus.ts";
import { parseConfig } from "../config.ts";
import { Device } from "../device.ts";
import { provision } from "../provision/provision.ts";
import { haveMosquitto, startMosquitto } from "../../test/support/broker.ts";
import { runDaemon } from "./run.ts";

const run = haveMosquitto() || Deno.env.get("CI") ? test : test.skip;

run(
  "linkd run: a damaged flash beside a written OTP is state error/store_damaged, logged, nothing written",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "linkd-damaged-" });
    const broker = await startMosquitto();
    try {
      const config = parseConfig(
        JSON.stringify({ flash: { path: "flash.img" }, keys: { otpPath: "otp.bin" } }),
        `${dir}/linkd.json`,
      );
      const d = Device.open(config);
      provision(d, { serial: "SN-DMG-1", productId: "p", clientId: "cid" }, () => 1);
      d.close();
      const good = Deno.readFileSync(`${dir}/flash.img`);
      const flipped = good.slice();
      flipped[5]! ^= 0x02;
      // null: the flash file is gone. An empty or missing part is not created or filled.
      const cases: [string, Uint8Array | null][] = [
        ["the only sector header flipped", flipped],
        ["flash erased", new Uint8Array(good.length).fill(0xff)],
        ["flash of random bytes", crypto.getRandomValues(new Uint8Array(good.length))],
        ["flash file empty", new Uint8Array(0)],
        ["flash file missing", null],
      ];
      for (const c of cases) {
        const [name, image] = c;
        if (image) Deno.writeFileSync(`${dir}/flash.img`, image);
        else Deno.removeSync(`${dir}/flash.img`);
        const otp = Deno.readFileSync(`${dir}/otp.bin`);
        const peer = await Peer.open({ port: broker.port, clientId: `audio-${cases.indexOf(c)}` });
        try {
          await peer.subscribe("linkd/#", { qos: 1, rap: true });
          const stop = new AbortController();
          const lines: string[] = [];
          let ready = false;
          const daemon = runDaemon({
            config,
            signal: stop.signal,
            log: (l) => lines.push(l),
            broker: { url: broker.url, protocolVersion: 5 },
            onReady: () => (ready = true),
          });
          const state = await peer.waitFor(
            () =>
              (peer.events as unknown as PeerMessage[]).find((e) =>
                e.ev === "message" && e.topic === "linkd/state" &&
                (e.cbor as { state?: string })?.state === "error"
              ),
            15_000,
          );
          const payload = state.cbor as { error: { code: string; message: string } };
          assert.is(payload.error.code, "store_damaged", name);
          assert.match(payload.error.message, /repair/, name);
          stop.abort();
          assert.is(await daemon, 0, name);
          assert.ok(ready, `${name}: READY once the first state is out`);
          assert.ok(lines.some((l) => l.includes("store_damaged")), `${name}: logged`);
          if (image) {
            assert.ok(
              equal(Deno.readFileSync(`${dir}/flash.img`), image),
              `${name}: flash unchanged`,
            );
          } else assert.throws(() => Deno.statSync(`${dir}/flash.img`), `${name}: not created`);
          assert.ok(equal(Deno.readFileSync(`${dir}/otp.bin`), otp), `${name}: OTP unchanged`);
        } finally {
          await peer.close();
        }
      }
    } finally {
      await broker.stop();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

test.run();
