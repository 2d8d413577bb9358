/**
 * Which way imports run, and what ships (issue 12). `src/` is what ships to the speaker: its
 * production files (every `.ts` but `*_test.ts`) import nothing under `test/` or `dev/`, and
 * each of them is loaded by the daemon or the CLI (a module only tests use is test support and
 * lives in test/support/). The lower rooms `bus/`, `present/`, `store/` and `auth/` import
 * nothing from `link/`, `daemon/`, `cli/` or `provision/`. A `*_test.ts` beside its subject may
 * import test/support/ and dev/ (the local authorization server); nothing is checked for it.
 *
 * Imports of every kind count: static, `import type`, dynamic `import()`, re-exports, and a
 * file named by `new URL("./x", import.meta.url)` (a child process, a script, a data file).
 *
 * And the README's "## Layout" block stays the layout on disk: it names every folder of src/,
 * dev/ and test/ and every file src/ ships, and names nothing that is not there.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { tsFiles } from "./support/source.ts";

const root = new URL("..", import.meta.url).pathname;

/** The files under src/ that ship: every `.ts` but the tests. */
function production(): string[] {
  return tsFiles("src").filter((f) => !f.endsWith("_test.ts"));
}

/** The repository paths `file` names by a relative specifier, of any kind (see above). */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(`${root}${file}`);
  const found: string[] = [];
  const specifier =
    /(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']|new URL\(\s*["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of text.matchAll(specifier)) {
    found.push(new URL((m[1] ?? m[2])!, `file://${root}${file}`).pathname.slice(root.length));
  }
  return found;
}

test("the scan sees every kind of import", () => {
  assert.ok(importsOf("src/main.ts").length > 0, "src/main.ts imports something");
  assert.ok(
    importsOf("src/link/controller_test.ts").some((t) => t.startsWith("dev/authserver/")),
    "a test that starts the local authorization server imports dev/",
  );
  assert.ok(
    importsOf("src/auth/http_memory_test.ts").includes("test/support/http_memory_child.ts"),
    "a child process named by new URL(..., import.meta.url) counts",
  );
});

test("nothing that ships (src/, tests aside) imports test/ or dev/", () => {
  const bad: string[] = [];
  for (const file of production()) {
    for (const target of importsOf(file)) {
      if (target.startsWith("test/") || target.startsWith("dev/")) {
        bad.push(`${file} imports ${target}`);
      }
    }
  }
  assert.equal(bad, []);
});

test("src/ holds no test-only module: each production file is loaded from src/main.ts", () => {
  const seen = new Set<string>();
  const todo = ["src/main.ts"];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file) || !file.startsWith("src/") || !file.endsWith(".ts")) continue;
    seen.add(file);
    todo.push(...importsOf(file));
  }
  assert.ok(seen.has("src/store/vault.ts"), "the walk reaches the store");
  assert.equal(production().filter((f) => !seen.has(f)), []);
});

test("bus/, present/, store/ and auth/ import nothing from link/, daemon/, cli/ or provision/", () => {
  const lower = ["src/bus/", "src/present/", "src/store/", "src/auth/"];
  const upper = ["src/link/", "src/daemon/", "src/cli/", "src/provision/"];
  const bad: string[] = [];
  for (const file of production().filter((f) => lower.some((l) => f.startsWith(l)))) {
    for (const target of importsOf(file)) {
      if (upper.some((u) => target.startsWith(u))) bad.push(`${file} imports ${target}`);
    }
  }
  assert.equal(bad, []);
});

/** The README's "## Layout" block: for each top-level entry (`src/`, `dev/`, ...), its entries. */
function layout(): Map<string, string[]> {
  const readme = Deno.readTextFileSync(`${root}README.md`);
  const block = readme.split("\n## Layout\n")[1]?.split("```")[1] ?? "";
  const tops = new Map<string, string[]>();
  let top = "";
  for (const line of block.split("\n")) {
    const indent = line.length - line.trimStart().length;
    const name = line.trim().split(/\s+/)[0] ?? "";
    if (name === "") continue;
    if (indent === 0) tops.set(top = name, []);
    else if (indent === 2) tops.get(top)?.push(name);
  }
  return tops;
}

/** Whether `name` (a file, `dir/`, or a `*` pattern) exists in the folder `dir`. */
function exists(dir: string, name: string): boolean {
  const pattern = new RegExp(
    `^${name.replace(/\/$/, "").replace(/\./g, "\\.").replace(/\*/g, ".*")}$`,
  );
  for (const e of Deno.readDirSync(`${root}${dir}`)) {
    if (pattern.test(e.name) && e.isDirectory === name.endsWith("/")) return true;
  }
  // a nested folder (`bus/mqtt/`)
  if (name.endsWith("/") && name.slice(0, -1).includes("/")) {
    try {
      return Deno.statSync(`${root}${dir}/${name}`).isDirectory;
    } catch {
      return false;
    }
  }
  return false;
}

test("the README's layout names every folder of src/, dev/ and test/, and each file src/ ships", () => {
  const tops = layout();
  assert.equal(["src/", "dev/", "test/"].filter((t) => !tops.has(t)), [], "the block is read");
  const missing: string[] = [];
  for (const top of ["src", "dev", "test"]) {
    const listed = tops.get(`${top}/`)!;
    for (const e of Deno.readDirSync(`${root}${top}`)) {
      const shipped = top === "src" && e.isFile && e.name.endsWith(".ts") &&
        !e.name.endsWith("_test.ts");
      if (e.isDirectory && !listed.includes(`${e.name}/`)) missing.push(`${top}/${e.name}/`);
      if (shipped && !listed.includes(e.name)) missing.push(`${top}/${e.name}`);
    }
  }
  assert.equal(missing, []);
});

test("every entry the README's layout names under src/, dev/ and test/ exists", () => {
  const gone: string[] = [];
  for (const top of ["src", "dev", "test"]) {
    for (const name of layout().get(`${top}/`) ?? []) {
      if (!exists(top, name)) gone.push(`${top}/${name}`);
    }
  }
  assert.equal(gone, []);
});

test.run();
