/**
 * Token latency on the bus: from linkd publishing an access token to a subscriber receiving it
 * through Debian's mosquitto, beside the same path for `mosquitto_pub` (reading lines, so no
 * process start is counted) to the same `mosquitto_sub`, which stamps every arrival (%U).
 * The two publishers take turns, one message each, so that a busy moment of this shared VM
 * falls on both sides alike (run one after the other, p99 ratios ranged from 0.65x to 5x).
 */
import { connectBus } from "../../src/bus/bus.ts";
import { systemClock } from "../../src/clock.ts";
import { clientArgs, haveMosquitto, startMosquitto } from "../support/broker.ts";
import type { Row } from "./main.ts";
import { eachLine } from "../support/lines.ts";

const MESSAGES = 400;
const PACE_MS = 5;
const wallMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function busFigures(): Promise<Row[]> {
  if (!haveMosquitto()) {
    return [{
      area: "bus",
      metric: "token latency (mosquitto not installed: run scripts/setup.sh)",
      value: "-",
      goal: "",
    }];
  }
  const broker = await startMosquitto();
  const sub = new Deno.Command("mosquitto_sub", {
    args: clientArgs(broker, "-q", "1", "-t", "linkd/token", "-t", "bench/base", "-F", "%t %U"),
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const arrivals: Record<string, number[]> = { "linkd/token": [], "bench/base": [] };
  const reading = eachLine(sub.stdout, (line) => {
    const [topic, at] = line.split(" ");
    arrivals[topic!]?.push(Number(at) * 1000);
  });
  try {
    await sleep(300); // the subscription is in place
    // linkd: the bus's own publishToken, as the daemon sends it.
    const bus = await connectBus({
      url: broker.url,
      prefix: "linkd",
      clock: systemClock,
      random: Math.random,
    });
    // Baseline: mosquitto_pub with one message per line on stdin, QoS 1, MQTT 5.
    const pub = new Deno.Command("mosquitto_pub", {
      args: clientArgs(broker, "-q", "1", "-t", "bench/base", "-l"),
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const w = pub.stdin.getWriter();
    await sleep(300); // connected
    const token = {
      access_token: "Atza|" + "x".repeat(900),
      token_type: "bearer",
      scopes: ["alexa:all"],
      expires_at: Date.now() + 3600_000,
      expires_in: 3600,
    };
    const line = new TextEncoder().encode("x".repeat(900) + "\n");
    const sentLinkd: number[] = [];
    const sentBase: number[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      sentLinkd.push(wallMs());
      await bus.publishToken(token);
      await sleep(PACE_MS);
      sentBase.push(wallMs());
      await w.write(line);
      await sleep(PACE_MS);
    }
    await bus.close();
    await w.close();
    await pub.status;
    await sleep(300);
    const lat = (sent: number[], got: number[]) =>
      sent.slice(0, got.length).map((s, i) => got[i]! - s).sort((a, b) => a - b);
    const l = lat(sentLinkd, arrivals["linkd/token"]!);
    const b = lat(sentBase, arrivals["bench/base"]!);
    const ratio = percentile(l, 50) / percentile(b, 50);
    const ratio99 = percentile(l, 99) / percentile(b, 99);
    return [
      {
        area: "bus",
        metric: `token to subscriber via mosquitto, linkd: p50 / p99 (ms, ${l.length} msgs)`,
        value: `${percentile(l, 50).toFixed(2)} / ${percentile(l, 99).toFixed(2)}`,
        goal: "",
      },
      {
        area: "bus",
        metric: `same path, mosquitto_pub -l: p50 / p99 (ms, ${b.length} msgs)`,
        value: `${percentile(b, 50).toFixed(2)} / ${percentile(b, 99).toFixed(2)}`,
        goal: "",
      },
      {
        area: "bus",
        metric: "linkd over mosquitto_pub: p50 / p99",
        value: `${ratio.toFixed(2)}x / ${ratio99.toFixed(2)}x`,
        goal: "<= 1.5x",
        met: ratio <= 1.5 && ratio99 <= 1.5 && l.length === MESSAGES && b.length === MESSAGES,
      },
    ];
  } finally {
    sub.kill();
    await reading.catch(() => {});
    await sub.status;
    await broker.stop();
  }
}
