/**
 * Driving code that mixes fake time with real I/O (a local HTTP server on 127.0.0.1): time is
 * moved to the next sleeper's deadline only once no request is in flight, so a test spans hours
 * of protocol time in a fraction of a second without racing real sockets.
 */
import type { BodyReader, Fetch, FetchResponse } from "../../src/auth/types.ts";
import { ByteBuilder } from "../../src/bytes.ts";
import type { FakeClock } from "./fake_clock.ts";
import { startTimer } from "../../src/timers.ts";

// Not the global setTimeout, which loads Node compat (src/timers.ts): the memory bench drives
// the daemon with this and must not count the harness's Node compat as linkd's.
const realSleep = (ms: number) => new Promise<void>((r) => startTimer(ms, r));

export interface TrackedFetch {
  fetch: Fetch;
  /** Requests started and not yet answered (headers and body read). */
  readonly inflight: number;
  /** Every request made, in order: path and form fields (for assertions). */
  readonly log: { at: number; path: string; form: Record<string, string> }[];
}

/** Wraps `fetch` to count requests in flight and log them with the fake monotonic time. */
export function trackFetch(clock: FakeClock, inner: Fetch = fetch): TrackedFetch {
  let inflight = 0;
  const log: TrackedFetch["log"] = [];
  const tracked: Fetch = async (input, init) => {
    inflight++;
    try {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const body = typeof init?.body === "string"
        ? init.body
        : init?.body instanceof URLSearchParams
        ? init.body.toString()
        : "";
      log.push({
        at: clock.monotonic(),
        path: url.pathname,
        form: Object.fromEntries(new URLSearchParams(body)),
      });
      // Read the body here, so that "answered" means answered in full.
      return await readInFull(await inner(input, init));
    } finally {
      inflight--;
    }
  };
  return {
    fetch: tracked,
    get inflight() {
      return inflight;
    },
    log,
  };
}

/**
 * Runs until `until()` holds: lets real I/O settle, then advances fake time to the next
 * deadline. Fails when nothing is left to wait for, or after `maxMs` of fake time.
 */
export async function drive(
  clock: FakeClock,
  io: { readonly inflight: number },
  until: () => boolean,
  options: { maxMs?: number; label?: string } = {},
): Promise<void> {
  const start = clock.monotonic();
  const maxMs = options.maxMs ?? 6 * 3600_000;
  const label = options.label ?? "condition";
  for (;;) {
    for (let i = 0; i < 250 && io.inflight > 0; i++) await realSleep(2);
    await realSleep(1);
    if (until()) return;
    const next = clock.nextDeadline();
    const limit = start + maxMs;
    if (next === null && io.inflight > 0) continue;
    if (next === null || next > limit) {
      // Nothing due before the limit: let time run to it, then give up if still not there.
      if (clock.monotonic() < limit) {
        await clock.advance(limit - clock.monotonic());
        continue;
      }
      throw new Error(`drive: ${label} not reached within ${maxMs / 1000} s of fake time`);
    }
    await clock.advance(Math.max(0, next - clock.monotonic()));
  }
}

/**
 * `res` with its body read to the end: the same status and headers, and the bytes in one piece.
 * Not a `Response`: the memory bench drives the daemon through this and must not count Deno's
 * fetch classes, which linkd's own client does without, as linkd's.
 */
export async function readInFull(res: FetchResponse): Promise<FetchResponse> {
  const all = new ByteBuilder();
  if (res.body !== null) {
    const reader = res.body.getReader();
    for (let step = await reader.read(); !step.done; step = await reader.read()) {
      if (step.value) all.append(step.value);
    }
  }
  const bytes = all.bytes();
  let given = bytes.length === 0;
  const reader: BodyReader = {
    read: () => {
      if (given) return Promise.resolve({ done: true });
      given = true;
      return Promise.resolve({ done: false, value: bytes });
    },
    cancel: () => Promise.resolve(),
    releaseLock: () => {},
  };
  return {
    status: res.status,
    headers: res.headers,
    body: { getReader: () => reader, cancel: () => Promise.resolve() },
  };
}
