import { test } from "uvu";
import * as assert from "uvu/assert";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type { Notifier } from "./sd_notify.ts";
import { startWatchdog, watchdogInterval } from "./watchdog.ts";

/** Records each state with the fake clock's monotonic time. */
class Recorder implements Notifier {
  readonly sent: { state: string; at: number }[] = [];
  ok = true;
  lastError: string | undefined;
  constructor(readonly clock: FakeClock) {}
  notify(state: string): Promise<boolean> {
    this.sent.push({ state, at: this.clock.monotonic() });
    this.lastError = this.ok ? undefined : "ECONNREFUSED";
    return Promise.resolve(this.ok);
  }
}

function envOf(vars: Record<string, string>): (n: string) => string | undefined {
  return (n) => vars[n];
}

test("WATCHDOG=1 every WATCHDOG_USEC/2 until the signal aborts", async () => {
  const clock = new FakeClock();
  const rec = new Recorder(clock);
  const stop = new AbortController();
  const t0 = clock.monotonic();
  const wd = startWatchdog(rec, envOf({ WATCHDOG_USEC: "30000000" }), clock, stop.signal, {
    pid: 42,
  });
  assert.ok(wd);
  assert.is(wd!.intervalMs, 15_000);
  await clock.advance(14_999);
  assert.is(rec.sent.length, 0, "the first ping waits one interval");
  await clock.advance(1);
  assert.is(rec.sent.length, 1);
  await clock.advance(15_000 * 9);
  assert.is(rec.sent.length, 10);
  rec.sent.forEach((s, i) => {
    assert.is(s.state, "WATCHDOG=1");
    assert.is(s.at - t0, 15_000 * (i + 1), `ping ${i} at its slot`);
  });
  stop.abort();
  await wd!.done;
  assert.is(clock.pending, 0, "no sleeper left");
  await clock.advance(60_000);
  assert.is(rec.sent.length, 10, "nothing after the abort");
});

test("WATCHDOG_PID equal to this process counts; odd intervals are kept exactly", async () => {
  const clock = new FakeClock();
  const rec = new Recorder(clock);
  const stop = new AbortController();
  const wd = startWatchdog(
    rec,
    envOf({ WATCHDOG_USEC: "3", WATCHDOG_PID: String(Deno.pid) }),
    clock,
    stop.signal,
  );
  assert.ok(wd);
  assert.is(wd!.intervalMs, 1, "sub-millisecond intervals are raised to 1 ms");
  stop.abort();
  await wd!.done;
  assert.is(watchdogInterval(envOf({ WATCHDOG_USEC: "3000" }), 1), 1.5);
  assert.is(watchdogInterval(envOf({ WATCHDOG_USEC: "5000000" }), 1), 2500);
});

test("nothing runs without WATCHDOG_USEC, with a bad one, or for another WATCHDOG_PID", async () => {
  const clock = new FakeClock();
  const rec = new Recorder(clock);
  const stop = new AbortController();
  const cases: Record<string, string>[] = [
    {},
    { WATCHDOG_USEC: "" },
    { WATCHDOG_USEC: "0" },
    { WATCHDOG_USEC: "-5" },
    { WATCHDOG_USEC: "abc" },
    { WATCHDOG_USEC: "1e6" },
    { WATCHDOG_USEC: "30000000", WATCHDOG_PID: "43" },
    { WATCHDOG_USEC: "30000000", WATCHDOG_PID: "x" },
  ];
  for (const vars of cases) {
    assert.is(startWatchdog(rec, envOf(vars), clock, stop.signal, { pid: 42 }), null);
  }
  assert.ok(
    startWatchdog(rec, envOf({ WATCHDOG_USEC: "2000", WATCHDOG_PID: "" }), clock, stop.signal, {
      pid: 42,
    }),
    "an empty WATCHDOG_PID counts as unset",
  );
  stop.abort();
  assert.is(
    startWatchdog(rec, envOf({ WATCHDOG_USEC: "2000" }), clock, stop.signal, { pid: 42 }),
    null,
    "an aborted signal starts nothing",
  );
  await clock.advance(100_000);
  assert.is(rec.sent.length, 0);
  assert.is(clock.pending, 0);
});

test("a failing notifier is reported once per outage and the pings go on", async () => {
  const clock = new FakeClock();
  const rec = new Recorder(clock);
  const stop = new AbortController();
  const failures: string[] = [];
  const wd = startWatchdog(rec, envOf({ WATCHDOG_USEC: "2000000" }), clock, stop.signal, {
    pid: 1,
    onFailure: (r) => failures.push(r),
  });
  rec.ok = false;
  await clock.advance(3_000);
  assert.is(rec.sent.length, 3);
  assert.equal(failures, ["ECONNREFUSED"]);
  rec.ok = true;
  await clock.advance(2_000);
  rec.ok = false;
  await clock.advance(1_000);
  assert.equal(failures, ["ECONNREFUSED", "ECONNREFUSED"]);
  assert.is(rec.sent.length, 6);
  stop.abort();
  await wd!.done;
});

test("a throwing notifier does not stop the watchdog", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const bad: Notifier = {
    notify() {
      calls++;
      throw new Error("boom");
    },
  };
  const failures: string[] = [];
  const stop = new AbortController();
  const wd = startWatchdog(bad, envOf({ WATCHDOG_USEC: "1000000" }), clock, stop.signal, {
    pid: 1,
    onFailure: (r) => failures.push(r),
  });
  await clock.advance(2_000);
  assert.is(calls, 4);
  assert.equal(failures, ["boom"]);
  stop.abort();
  await wd!.done;
});

test("a stalled ping does not cause a burst: the next one goes at once, then re-phases", async () => {
  const clock = new FakeClock();
  const sent: number[] = [];
  let stall: Promise<void> | null = null;
  const slow: Notifier = {
    async notify() {
      sent.push(clock.monotonic());
      if (sent.length === 1) {
        stall = clock.sleep(5_000);
        await stall;
      }
      return true;
    },
  };
  const stop = new AbortController();
  const t0 = clock.monotonic();
  const wd = startWatchdog(slow, envOf({ WATCHDOG_USEC: "2000000" }), clock, stop.signal, {
    pid: 1,
  });
  await clock.advance(10_000);
  // first at 1 s, stalled until 6 s, then at once (6 s), then 7, 8, 9, 10 s
  assert.equal(sent.map((t) => t - t0), [1_000, 6_000, 7_000, 8_000, 9_000, 10_000]);
  stop.abort();
  await wd!.done;
});

test.run();
