/**
 * linkd's timers, without Deno's global `setTimeout`. In Deno 2.9 the global `setTimeout` is
 * Node's (it returns a Timeout object) and its first call loads part of the Node compatibility
 * layer: about 10 ms and 4 MB on this machine, on linkd's boot path. `AbortSignal.timeout` is
 * Deno's own web timer and costs nothing to set up, but it cannot be cancelled: Deno keeps the
 * process alive for it only while the signal has an "abort" listener, and the timer itself (its
 * signal, its entry in the runtime) lives until its time comes.
 *
 * So every timer linkd starts goes into one queue, ordered by deadline, and the runtime holds a
 * web timer only for the earliest one. A cancelled timer leaves the queue at once, with its
 * callback. A new timer starts a web timer only when it is due before every web timer already
 * running; one due later waits for them. With the MQTT client's ack deadline (one per QoS 1
 * publish, cancelled by the PUBACK a few ms later), 1000 publishes left ~900 web timers and
 * their signals alive for the deadline's 30 s; the queue leaves one.
 */

/** The longest single web timer (its limit); longer delays wake up and wait again. */
const MAX_STEP_MS = 2 ** 31 - 1;

/** Cancels the timer; calling it again, or after it fired, does nothing. */
export type CancelTimer = () => void;

interface Entry {
  /** Deadline, in `performance.now()` milliseconds. */
  readonly at: number;
  /** Start order: timers due at the same time fire in the order they were started. */
  readonly seq: number;
  fn: (() => void) | null;
  /** Index in `queue`, -1 once out of it. */
  index: number;
}

/** A running web timer: the deadline it fires for, and how to stop it holding the process. */
interface Wakeup {
  readonly at: number;
  readonly release: () => void;
}

/** Binary min-heap of pending timers by (at, seq). */
const queue: Entry[] = [];
const wakeups = new Set<Wakeup>();
let started = 0;

/**
 * Calls `fn` once after `ms` milliseconds. A negative or NaN delay means 0 (as `setTimeout`);
 * Infinity means never. A callback that throws is reported as an uncaught error
 * (`reportError`), as a throwing event listener is; the other timers still fire.
 */
export function startTimer(ms: number, fn: () => void): CancelTimer {
  if (ms === Infinity) return () => {};
  const delay = Number.isNaN(ms) ? 0 : Math.max(0, Math.ceil(ms));
  const entry: Entry = { at: performance.now() + delay, seq: started++, fn, index: -1 };
  push(entry);
  wakeUpBy(queue[0]!.at);
  return () => {
    if (entry.index < 0) return;
    remove(entry);
    if (queue.length === 0) releaseAll();
  };
}

/** Timers pending and web timers running: for tests. */
export function timerCounts(): { pending: number; webTimers: number } {
  return { pending: queue.length, webTimers: wakeups.size };
}

/** Makes sure a web timer fires at or before `at`. */
function wakeUpBy(at: number): void {
  for (const w of wakeups) if (w.at <= at) return;
  const now = performance.now();
  const step = Math.min(at - now, MAX_STEP_MS); // a longer wait wakes up and waits again
  const signal = AbortSignal.timeout(Math.max(0, Math.ceil(step)));
  const wakeup: Wakeup = {
    at: now + step, // the deadline it serves (the web timer rounds up to whole ms)
    release: () => signal.removeEventListener("abort", onTime),
  };
  function onTime(): void {
    wakeups.delete(wakeup);
    fireDue();
  }
  signal.addEventListener("abort", onTime, { once: true });
  wakeups.add(wakeup);
}

/**
 * Runs every timer whose deadline has come, then waits for the next one (if any). Timers the
 * callbacks start wait for a later wakeup, even with no delay (as `setTimeout(fn, 0)` would).
 */
function fireDue(): void {
  const now = performance.now();
  const startedBefore = started;
  while (queue.length > 0 && queue[0]!.at <= now && queue[0]!.seq < startedBefore) {
    const entry = queue[0]!;
    const fn = entry.fn!;
    remove(entry);
    try {
      fn();
    } catch (e) {
      reportError(e);
    }
  }
  if (queue.length === 0) releaseAll();
  else wakeUpBy(queue[0]!.at);
}

/** No timer left: no web timer may hold the process (they tick once more, to nobody). */
function releaseAll(): void {
  for (const w of wakeups) w.release();
  wakeups.clear();
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function place(entry: Entry, index: number): void {
  queue[index] = entry;
  entry.index = index;
}

function push(entry: Entry): void {
  place(entry, queue.length);
  up(entry.index);
}

function remove(entry: Entry): void {
  const i = entry.index;
  const last = queue.pop()!;
  entry.index = -1;
  entry.fn = null;
  if (last === entry) return;
  place(last, i);
  up(i);
  down(last.index);
}

function up(i: number): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(queue[i]!, queue[parent]!)) return;
    const e = queue[i]!;
    place(queue[parent]!, i);
    place(e, parent);
    i = parent;
  }
}

function down(i: number): void {
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let least = i;
    if (l < queue.length && before(queue[l]!, queue[least]!)) least = l;
    if (r < queue.length && before(queue[r]!, queue[least]!)) least = r;
    if (least === i) return;
    const e = queue[i]!;
    place(queue[least]!, i);
    place(e, least);
    i = least;
  }
}
