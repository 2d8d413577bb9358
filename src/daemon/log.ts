/**
 * Levelled log lines for `linkd run`, as journald and syslog read them.
 *
 * Each line the daemon logs has a level; when stderr is journald's stream the line starts with
 * the sd-daemon(3) prefix of that level (`<3>` err, `<4>` warning, `<5>` notice, `<6>` info,
 * `<7>` debug), which journald strips and stores as the entry's PRIORITY (`journalctl -p`,
 * `systemctl status` colouring). On a terminal, in a file or a pipe, the line stays bare.
 *
 * Whether stderr is the journal: systemd sets `JOURNAL_STREAM=<dev>:<ino>` to the stream socket
 * it connected to stdout/stderr; stderr is the journal when fd 2 still has that device and inode
 * (sd-daemon's rule: a child whose stderr was redirected inherits the variable but not the
 * socket). Deno has no fstat of fd 2, so fd 2 is read through `/proc/self/fd/2` (stat follows the
 * link to the socket's inode). When that cannot be read (no /proc, no read permission), a set
 * `JOURNAL_STREAM` and a stderr that is not a terminal are taken as the journal.
 */

/** syslog(3) levels a line can have, as sd-daemon(3) names them. */
export type Level = "err" | "warning" | "notice" | "info" | "debug";

/** The syslog priority of each level (the number in the `<N>` prefix). */
export const PRIORITY: Readonly<Record<Level, number>> = Object.freeze({
  err: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
});

/** A log function: one line (no newline), with its level (default `info`). */
export type Log = (line: string, level?: Level) => void;

/** `line` with the sd-daemon prefix of `level`, e.g. `<3>linkd: ...`. */
export function withPriority(line: string, level: Level): string {
  return `<${PRIORITY[level]}>${line}`;
}

/** What the journal check needs of the process: the device and inode of fd 2, a terminal test. */
export interface StderrProbe {
  /** `[dev, ino]` of stderr, or null when it cannot be read. */
  id(): [number, number] | null;
  isTerminal(): boolean;
}

export const systemStderr: StderrProbe = {
  id() {
    try {
      const st = Deno.statSync("/proc/self/fd/2");
      return st.ino === null ? null : [st.dev, st.ino];
    } catch {
      return null;
    }
  },
  isTerminal() {
    try {
      return Deno.stderr.isTerminal();
    } catch {
      return false;
    }
  },
};

/** Whether stderr is journald's stream (see the module's comment). */
export function stderrIsJournal(
  env: (name: string) => string | undefined,
  probe: StderrProbe = systemStderr,
): boolean {
  const m = /^(\d{1,20}):(\d{1,20})$/.exec(env("JOURNAL_STREAM") ?? "");
  if (!m) return false;
  const id = probe.id();
  if (id === null) return !probe.isTerminal();
  return BigInt(id[0]) === BigInt(m[1]!) && BigInt(id[1]) === BigInt(m[2]!);
}

/** A Log writing each line through `write`, prefixed with its level when `prefix` is true. */
export function levelledLog(write: (text: string) => void, prefix: boolean): Log {
  return (line, level = "info") => write(prefix ? withPriority(line, level) : line);
}
