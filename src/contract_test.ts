/**
 * contract.ts stays a leaf that everyone reads: it imports nothing, and the bus and the
 * presenter take the contract's shapes from it, never from the link controller above them.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BusCode, COMMANDS, LINK_STATES, REFRESH_REASONS } from "./contract.ts";

const SRC = new URL("./", import.meta.url);

/** The module specifiers of every import and re-export in `code`. */
function specifiers(code: string): string[] {
  const found: string[] = [];
  for (const m of code.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/g)) {
    found.push(m[1]!);
  }
  for (const m of code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]!);
  for (const m of code.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push(m[1]!);
  return found;
}

/** Every .ts file under `dir` (a URL ending in `/`), recursively. */
async function tsFiles(dir: URL): Promise<URL[]> {
  const out: URL[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...await tsFiles(new URL(`${e.name}/`, dir)));
    else if (e.name.endsWith(".ts")) out.push(new URL(e.name, dir));
  }
  return out;
}

test("specifiers() finds static, type-only, re-exported and dynamic imports", () => {
  const code = [
    'import type { A } from "../link/a.ts";',
    'import {\n  b,\n  type C,\n} from "./b.ts";',
    'export { d } from "../d.ts";',
    'const e = await import("./e.ts");',
    'import "./f.ts";',
  ].join("\n");
  assert.equal(specifiers(code), ["../link/a.ts", "./b.ts", "../d.ts", "./e.ts", "./f.ts"]);
});

test("contract.ts imports nothing", async () => {
  const code = await Deno.readTextFile(new URL("contract.ts", SRC));
  assert.equal(specifiers(code), []);
});

test("bus/ and present/ (tests included) import nothing from link/", async () => {
  const link = new URL("link/", SRC).href;
  const offending: string[] = [];
  for (const dir of ["bus/", "present/"]) {
    for (const file of await tsFiles(new URL(dir, SRC))) {
      for (const s of specifiers(await Deno.readTextFile(file))) {
        if (!s.startsWith(".")) continue;
        if (new URL(s, file).href.startsWith(link)) {
          offending.push(`${file.href.slice(SRC.href.length)} imports ${s}`);
        }
      }
    }
  }
  assert.equal(offending, []);
});

test("the contract's name lists are those of CONTRACT.md section 4", () => {
  assert.equal([...LINK_STATES], [
    "unprovisioned",
    "unlinked",
    "pairing",
    "linked",
    "error",
    "offline",
  ]);
  assert.equal([...COMMANDS], ["pair", "logout", "token", "refresh"]);
  assert.equal([...REFRESH_REASONS], ["rejected"]);
  assert.is(BusCode.TOO_LARGE, "too_large");
});

test.run();
