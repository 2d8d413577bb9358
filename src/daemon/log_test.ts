/** Levelled log lines (log.ts): sd-daemon prefixes, only when stderr is journald's stream. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { levelledLog, stderrIsJournal, type StderrProbe, withPriority } from "./log.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];
const probe = (id: [number, number] | null, terminal = false): StderrProbe => ({
  id: () => id,
  isTerminal: () => terminal,
});

test("each level has its sd-daemon(3) prefix", () => {
  assert.equal(
    (["err", "warning", "notice", "info", "debug"] as const).map((l) => withPriority("x", l)),
    ["<3>x", "<4>x", "<5>x", "<6>x", "<7>x"],
  );
});

test("levelledLog prefixes only when asked, info by default", () => {
  const out: string[] = [];
  const journal = levelledLog((t) => out.push(t), true);
  journal("linkd: a", "err");
  journal("linkd: b");
  const bare = levelledLog((t) => out.push(t), false);
  bare("linkd: c", "err");
  assert.equal(out, ["<3>linkd: a", "<6>linkd: b", "linkd: c"]);
});

test("stderr is the journal when JOURNAL_STREAM names fd 2's device and inode", () => {
  const js = env({ JOURNAL_STREAM: "9:509560" });
  assert.ok(stderrIsJournal(js, probe([9, 509560])));
  // Inherited by a process whose stderr was redirected: not the journal.
  assert.not.ok(stderrIsJournal(js, probe([9, 1])));
  assert.not.ok(stderrIsJournal(js, probe([8, 509560])));
  // No JOURNAL_STREAM, or not dev:ino: never.
  assert.not.ok(stderrIsJournal(env({}), probe([9, 509560])));
  assert.not.ok(stderrIsJournal(env({ JOURNAL_STREAM: "9:509560x" }), probe([9, 509560])));
  assert.not.ok(stderrIsJournal(env({ INVOCATION_ID: "abc" }), probe(null)));
  // fd 2 unreadable: a set JOURNAL_STREAM counts, unless stderr is a terminal.
  assert.ok(stderrIsJournal(js, probe(null, false)));
  assert.not.ok(stderrIsJournal(js, probe(null, true)));
});

test("the system probe reads this process's real stderr", async () => {
  // A child whose stderr is a pipe: JOURNAL_STREAM set from that pipe's own stat by sh.
  const code = `import { stderrIsJournal } from "${new URL("./log.ts", import.meta.url).href}";
console.log(stderrIsJournal((n) => Deno.env.get(n)));`;
  const run = (js: string) =>
    new Deno.Command("/bin/sh", {
      args: ["-c", `JOURNAL_STREAM=${js} exec "$0" eval "$1"`, Deno.execPath(), code],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const match = await run("$(stat -L -c %d:%i /proc/self/fd/2)");
  const other = await run("1:2");
  assert.is(new TextDecoder().decode(match.stdout).trim(), "true");
  assert.is(new TextDecoder().decode(other.stdout).trim(), "false");
});

test.run();
