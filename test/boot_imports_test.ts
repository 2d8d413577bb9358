/**
 * What a linked boot loads, and which way the flash formats' imports run: `linkd run` (src/main.ts,
 * then src/daemon/run.ts, imported when the command is `run`) evaluates no module of provision/
 * (the line's signing code), and store/ and records/ import nothing from provision/ (records/
 * sits below the store: it imports no store/, link/, daemon/ or cli/ either).
 *
 * The boot's modules are the static code imports (`deno info --json`: neither `import type` nor
 * a dynamic `import()`, which loads only when its line runs) from each entry.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { tsFiles } from "./support/source.ts";

const root = new URL("..", import.meta.url).pathname;

interface Dependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Info {
  modules: { specifier: string; dependencies?: Dependency[] }[];
}

/** The repository paths of the modules `entries` load before any of their code runs. */
async function staticGraph(entries: string[]): Promise<string[]> {
  const deps = new Map<string, string[]>();
  for (const entry of entries) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", `${root}${entry}`],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
    for (const m of info.modules) {
      deps.set(
        m.specifier,
        (m.dependencies ?? []).filter((d) => d.code && !d.isDynamic).map((d) => d.code!.specifier),
      );
    }
  }
  const seen = new Set<string>();
  const todo = entries.map((e) => new URL(e, `file://${root}`).href);
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    todo.push(...(deps.get(s) ?? []));
  }
  const prefix = `file://${root}`;
  return [...seen].filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length)).sort();
}

/** The repository paths `file` imports, of any kind (static, type-only, dynamic, re-export). */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(`${root}${file}`);
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
    found.push(new URL(m[1]!, `file://${root}${file}`).pathname.slice(root.length));
  }
  return found;
}

test("linkd run loads no module of provision/ (the line's signing code)", async () => {
  const graph = await staticGraph(["src/main.ts", "src/daemon/run.ts"]);
  assert.ok(graph.includes("src/store/vault.ts"), "the boot opens the vault");
  assert.ok(graph.includes("src/records/identity.ts"), "and reads the identity");
  assert.equal(graph.filter((m) => m.startsWith("src/provision/")), []);
});

test("store/ and records/ import nothing from provision/; records/ sits below the store", () => {
  const bad: string[] = [];
  for (const file of [...tsFiles("src/store"), ...tsFiles("src/records")]) {
    const above = file.startsWith("src/records/")
      ? ["src/provision/", "src/store/", "src/link/", "src/daemon/", "src/cli/"]
      : ["src/provision/"];
    for (const target of importsOf(file)) {
      if (above.some((a) => target.startsWith(a))) bad.push(`${file} imports ${target}`);
    }
  }
  assert.equal(bad, []);
  assert.ok(importsOf("src/store/vault.ts").includes("src/records/identity.ts"), "the check reads");
});

test.run();
