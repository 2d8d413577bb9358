/** startTimer(): fires once, cancels for good, never calls the global setTimeout, never holds the process. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startTimer } from "./timers.ts";

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

test.run();
