/**
 * startTimer(): fires once, in deadline order, cancels for good, never calls the global
 * setTimeout, never holds the process, and keeps one web timer however many it has pending.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startTimer, timerCounts } from "./timers.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => startTimer(ms, resolve));

const here = new URL(".", import.meta.url).pathname;

test("startTimer() calls back once, after the delay, without the global setTimeout", async () => {
  const saved = globalThis.setTimeout;
  // deno-lint-ignore no-explicit-any
  (globalThis as any).setTimeout = () => {
    throw new Error("the global setTimeout was called");
  };
  try {
    const t0 = performance.now();
    let calls = 0;
    await new Promise<void>((resolve) => startTimer(30, () => (calls++, resolve())));
    assert.ok(performance.now() - t0 >= 29, "not before its time");
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      startTimer(20, () => order.push("20"));
      startTimer(-5, () => order.push("neg"));
      startTimer(NaN, () => order.push("nan"));
      startTimer(40, () => (order.push("40"), resolve()));
    });
    assert.equal(order.slice(0, 2).sort(), ["nan", "neg"]);
    assert.equal(order.slice(2), ["20", "40"]);
    assert.is(calls, 1);
  } finally {
    globalThis.setTimeout = saved;
  }
});

test("a cancelled timer never fires; cancelling twice or after firing does nothing", async () => {
  let fired = 0;
  const cancel = startTimer(10, () => fired++);
  cancel();
  cancel();
  const fires = startTimer(5, () => fired += 10);
  await new Promise<void>((resolve) => startTimer(40, resolve));
  fires();
  assert.is(fired, 10);
});

test("a pending timer keeps the process alive; a cancelled one (and Infinity) does not", async () => {
  const run = async (code: string) => {
    const file = await Deno.makeTempFile({ suffix: ".ts", dir: here });
    try {
      await Deno.writeTextFile(file, `import { startTimer } from "./timers.ts";\n${code}\n`);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout).trim();
    } finally {
      await Deno.remove(file);
    }
  };
  assert.is(await run(`startTimer(50, () => console.log("fired"));`), "fired");
  // A 60 s timer cancelled at once: the child ends without waiting for it (the test would time
  // out otherwise) and prints nothing.
  assert.is(
    await run(
      `const c = startTimer(60_000, () => console.log("fired")); c(); console.log("ended");`,
    ),
    "ended",
  );
  assert.is(
    await run(`startTimer(Infinity, () => console.log("fired")); console.log("ended");`),
    "ended",
  );
});

test("1000 timers started and cancelled as acks come (the MQTT client's deadlines): one web timer", async () => {
  assert.equal(timerCounts(), { pending: 0, webTimers: 0 });
  let fired = 0;
  const first = startTimer(30_000, () => fired++);
  for (let i = 0; i < 1000; i++) {
    const cancel = startTimer(30_000, () => fired++);
    if (i % 100 === 0) await sleep(1); // time passes between publishes
    cancel();
  }
  assert.equal(timerCounts(), { pending: 1, webTimers: 1 });
  first();
  assert.equal(timerCounts(), { pending: 0, webTimers: 0 }, "nothing pending: nothing held");
  assert.is(fired, 0);
});

test("a timer due before the running web timer starts its own; the later one still fires", async () => {
  const order: string[] = [];
  const done = new Promise<void>((resolve) => {
    startTimer(60, () => (order.push("60"), resolve()));
    startTimer(10, () => order.push("10"));
  });
  assert.equal(timerCounts(), { pending: 2, webTimers: 2 });
  await done;
  assert.equal(order, ["10", "60"]);
  assert.equal(timerCounts(), { pending: 0, webTimers: 0 });
});

test("timers due at the same time fire in the order they were started", async () => {
  const order: number[] = [];
  for (let i = 0; i < 20; i++) startTimer(5, () => order.push(i));
  await sleep(30);
  assert.equal(order, [...Array(20).keys()]);
});

test("a callback that throws is reported as uncaught; the other timers still fire", async () => {
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    reported.push(e.error);
    e.preventDefault(); // handled here: the test process goes on
  };
  globalThis.addEventListener("error", onError);
  try {
    const order: string[] = [];
    startTimer(5, () => {
      throw new Error("boom");
    });
    startTimer(5, () => order.push("after"));
    await sleep(30);
    assert.equal(order, ["after"]);
    assert.is(reported.length, 1);
    assert.match(String(reported[0]), /boom/);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

test("a timer started by a callback, even with no delay, fires after the callbacks due now", async () => {
  const order: string[] = [];
  startTimer(5, () => {
    order.push("a");
    startTimer(0, () => order.push("from a"));
  });
  startTimer(5, () => order.push("b"));
  await sleep(40);
  assert.equal(order, ["a", "b", "from a"]);
});

test("a cancelled timer, in the middle of many, leaves the others in order", async () => {
  const order: number[] = [];
  const cancels = [40, 10, 30, 20, 50].map((ms) => startTimer(ms, () => order.push(ms)));
  cancels[2]!(); // 30
  cancels[1]!(); // 10
  await sleep(80);
  assert.equal(order, [20, 40, 50]);
  assert.equal(timerCounts(), { pending: 0, webTimers: 0 });
});

test.run();
