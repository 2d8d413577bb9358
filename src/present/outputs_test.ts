import { test } from "uvu";
import * as assert from "uvu/assert";
import { lwaPairing, rfcPairing } from "../../test/support/present.ts";
import { FakeClock } from "../../test/support/fake_clock.ts";
import type { Display, Say, Segment } from "../contract.ts";
import { type Output, Presenter, type PresenterOptions } from "./outputs.ts";

const LWA = lwaPairing();

const RFC = rfcPairing();

const ALL: Output[] = ["voice", "segment", "screen", "terminal"];

function rig(outputs: Output[] = ALL, extra: Partial<PresenterOptions> = {}) {
  const clock = new FakeClock();
  const said: Say[] = [];
  const segments: (Segment | null)[] = [];
  const displays: (Display | null)[] = [];
  const terminal: string[] = [];
  const errors: { output: Output; message: string }[] = [];
  const notes: { output: Output; notes: string[] }[] = [];
  const presenter = new Presenter({
    outputs,
    lang: "en-US",
    clock,
    sinks: {
      say: (p) => void said.push(p),
      segment: (p) => void segments.push(p),
      display: (p) => void displays.push(p),
      terminal: (t) => void terminal.push(t),
    },
    onError: (output, e) =>
      errors.push({ output, message: e instanceof Error ? e.message : String(e) }),
    onNotes: (output, n) => notes.push({ output, notes: n }),
    ...extra,
  });
  return { clock, presenter, said, segments, displays, terminal, errors, notes };
}

test("every configured output gets its payload", async () => {
  const r = rig();
  await r.presenter.show(LWA);
  assert.is(r.said.length, 1);
  assert.is(r.said[0]!.lang, "en-US");
  assert.match(r.said[0]!.text, /Q, F, H, Z, K, M\./);
  assert.equal(r.segments, [{
    digits: 4,
    kind: 7,
    frames: r.segments[0]!.frames,
    frame_ms: 500,
  }]);
  assert.is(r.segments[0]!.frames.length, 7);
  assert.is(r.displays.length, 1);
  assert.equal(Object.keys(r.displays[0]!).sort(), ["bitmap", "height", "width"]);
  assert.is(r.displays[0]!.width, 128);
  assert.is(r.displays[0]!.bitmap.length, 1024);
  assert.is(r.terminal.length, 1);
  assert.ok(r.terminal[0]!.includes("https://amazon.com/us/code"));
  assert.ok(r.terminal[0]!.includes("4-digit 7-segment display"));
  assert.equal(r.errors, []);
  await r.presenter.clear();
});

test("only the configured outputs run", async () => {
  const r = rig(["segment", "screen"]);
  await r.presenter.show(LWA);
  assert.is(r.said.length, 0);
  assert.is(r.terminal.length, 0);
  assert.is(r.segments.length, 1);
  assert.is(r.displays.length, 1);
  await r.clock.advance(600_000);
  assert.is(r.said.length, 0, "no voice repeats either");
  await r.presenter.clear();
  assert.equal(r.segments.slice(1), [null]);
  assert.equal(r.displays.slice(1), [null]);
  assert.is(r.terminal.length, 0);
  assert.equal(r.errors, []);
  const v = rig(["voice"]);
  await v.presenter.show(LWA);
  assert.is(v.said.length, 1);
  assert.is(v.segments.length + v.displays.length + v.terminal.length, 0);
  await v.presenter.clear();
  assert.equal(new Presenter({ ...optionsOf(v), outputs: ["screen", "screen"] }).outputs, [
    "screen",
  ]);
});

function optionsOf(r: ReturnType<typeof rig>): PresenterOptions {
  return { outputs: [], lang: "en-US", clock: r.clock, sinks: {} };
}

test("one output that throws, rejects or cannot compute does not stop the others", async () => {
  const r = rig(ALL); // collects what the broken rig's sinks let through
  const broken = rig(ALL, {
    sinks: {
      say: (p) => void r.said.push(p),
      segment: () => {
        throw new Error("segment display unplugged");
      },
      display: () => Promise.reject(new Error("bus down")),
      terminal: (t) => void r.terminal.push(t),
    },
    onError: (output, e) => r.errors.push({ output, message: (e as Error).message }),
  });
  await broken.presenter.show(LWA);
  assert.is(r.said.length, 1);
  assert.is(r.terminal.length, 1);
  assert.equal(r.errors.map((e) => e.output).sort(), ["screen", "segment"]);
  assert.ok(r.errors.some((e) => e.message === "bus down"));
  assert.ok(r.errors.some((e) => e.message === "segment display unplugged"));
  await broken.presenter.clear();

  // A code the segment font cannot draw: that output fails alone, the others show it.
  const odd = rig(ALL);
  await odd.presenter.show({ ...LWA, user_code: "AB€D" });
  assert.equal(odd.errors.map((e) => e.output), ["segment"]);
  assert.match(odd.errors[0]!.message, /no 7-segment shape/);
  assert.is(odd.said.length, 1);
  assert.is(odd.displays.length, 1);
  assert.is(odd.terminal.length, 1);
  assert.not.ok(odd.terminal[0]!.includes("segment display"), "no LED art for it");
  await odd.presenter.clear();
});

test("a missing sink and an error reporter that throws are contained", async () => {
  const r = rig(ALL, {
    sinks: { say: () => {} },
    onError: () => {
      throw new Error("the logger broke too");
    },
  });
  await r.presenter.show(LWA); // must not reject
  await r.presenter.clear();
  const seen: string[] = [];
  const m = rig(["terminal", "voice"], {
    sinks: { say: () => {} },
    onError: (o, e) => seen.push(`${o}: ${(e as Error).message}`),
  });
  await m.presenter.show(LWA);
  assert.equal(seen, ["terminal: no terminal sink for the terminal output"]);
  await m.presenter.clear();
});

test("voice repeats every minute, three times, on the injected clock", async () => {
  const r = rig(["voice"]);
  await r.presenter.show(LWA);
  assert.is(r.said.length, 1);
  await r.clock.advance(59_999);
  assert.is(r.said.length, 1);
  await r.clock.advance(1);
  assert.is(r.said.length, 2);
  await r.clock.advance(120_000);
  assert.is(r.said.length, 4);
  await r.clock.advance(600_000);
  assert.is(r.said.length, 4, "at most 3 repeats");
  assert.ok(r.said.every((s) => s.text === r.said[0]!.text));
  assert.is(r.clock.pending, 0);
});

test("clear() cancels the repeats and blanks the segment display and the screen", async () => {
  const r = rig();
  await r.presenter.show(LWA);
  await r.clock.advance(60_000);
  assert.is(r.said.length, 2);
  assert.is(r.clock.pending, 1);
  await r.presenter.clear();
  assert.is(r.clock.pending, 0, "the repeat timer is gone");
  await r.clock.advance(600_000);
  assert.is(r.said.length, 2);
  assert.equal(r.segments.at(-1), null);
  assert.equal(r.displays.at(-1), null);
  assert.match(r.terminal.at(-1)!, /Pairing ended/);
  assert.equal(r.errors, []);
});

test("a new code replaces the old one's repeats", async () => {
  const r = rig(["voice"]);
  await r.presenter.show(LWA);
  await r.clock.advance(30_000);
  await r.presenter.show(RFC);
  assert.is(r.said.length, 2);
  await r.clock.advance(45_000); // LWA's repeat would have been due 15 s ago
  assert.is(r.said.length, 2);
  await r.clock.advance(15_000);
  assert.is(r.said.length, 3);
  assert.match(r.said[2]!.text, /B, C, D, F\. G, H, J, K\./);
  await r.presenter.clear();
});

test("a repeat that fails is reported and the next repeat still comes", async () => {
  const r = rig(["voice"]);
  let n = 0;
  const p = new Presenter({
    outputs: ["voice"],
    lang: "de-DE",
    clock: r.clock,
    sinks: {
      say: (s) => {
        if (++n === 2) throw new Error("audio busy");
        r.said.push(s);
      },
    },
    onError: (o, e) => r.errors.push({ output: o, message: (e as Error).message }),
    voice: { everyMs: 10_000, max: 3 },
  });
  await p.show(LWA);
  await r.clock.advance(30_000);
  assert.is(n, 4);
  assert.is(r.said.length, 3);
  assert.equal(r.errors, [{ output: "voice", message: "audio busy" }]);
  assert.is(r.said[0]!.lang, "de-DE");
  await p.clear();
});

test("the screen's notes are passed on; options reach each output", async () => {
  const r = rig(["screen", "segment"], {
    screen: { width: 64, height: 48 },
    segment: { digits: 8, kind: 14, frameMs: 300 },
  });
  await r.presenter.show(RFC);
  assert.equal(r.notes, [{
    output: "screen",
    notes: [
      "qr: left out, the code would not fit in large type beside it",
      "url: left out, no room for the URL text",
    ],
  }]);
  assert.is(r.displays[0]!.width, 64);
  assert.is(r.displays[0]!.bitmap.length, 8 * 48);
  assert.is(r.segments[0]!.digits, 8);
  assert.is(r.segments[0]!.kind, 14);
  assert.is(r.segments[0]!.frame_ms, 300);
  assert.is(r.segments[0]!.frames.length, 10);
  await r.presenter.clear();
});

test.run();
