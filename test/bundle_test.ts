/**
 * scripts/bundle.ts: the shipped bundle imports no `node:` module (each one loads Deno's Node
 * compatibility layer at every boot), the CommonJS `require` shim is replaced by one that
 * throws, and the guard refuses a bundle that would load Node compat. Bundles made at once into
 * an empty DENO_DIR (a new machine's, and CI's) all succeed, though their esbuild installs race.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { bundle, checkSyntax, dropRequireShim, nodeImports } from "../scripts/bundle.ts";
import { loadOnly } from "./bench/daemon_bench.ts";

const root = new URL("..", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "linkd-bundle-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

test("nodeImports() finds static, dynamic and re-exported node: specifiers", () => {
  const code = `import{a}from"node:path";export*from'node:fs';const z=await import("node:zlib");` +
    `import x from "./node:not";`;
  assert.equal(nodeImports(code), ["node:fs", "node:path", "node:zlib"]);
  assert.equal(nodeImports(`const s = "nodes:x"; import "./a.js";`), []);
});

test("dropRequireShim() replaces deno bundle's createRequire shim by a throwing require", () => {
  const code =
    `var a=1;import{createRequire as __deno_internal_createRequire} from "node:module";var $i=__deno_internal_createRequire(import.meta.url);typeof $i<"u"&&$i("node:crypto");`;
  const r = dropRequireShim(code);
  assert.equal(r.requires, ["$i"]);
  assert.not.match(r.code, "node:module");
  assert.throws(
    () => new Function(r.code)(),
    /no require\(\): node:crypto/,
  );
  assert.equal(dropRequireShim("var a=1;").requires, []);
});

test("bundle() of src/main.ts: no node: import is left, and it runs", async () => {
  const out = `${dir}/linkd.js`;
  await bundle(`${root}src/main.ts`, out);
  const code = Deno.readTextFileSync(out);
  assert.not.match(code, "__deno_internal_createRequire(import.meta.url)");
  // tweetnacl's never-taken require("node:crypto"), and the ledger's engine, loaded by import()
  // only when a factory station opens a SQLite ledger: nothing else.
  assert.match(code, 'import("node:sqlite")');
  assert.equal(
    nodeImports(
      code.replace(/[\w$]+\("node:crypto"\)/g, "").replaceAll('import("node:sqlite")', ""),
    ),
    [],
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "--allow-read", "--allow-env", out, "--version"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.is(r.code, 0, new TextDecoder().decode(r.stderr));
  assert.match(new TextDecoder().decode(r.stdout), /^linkd \d+\.\d+\.\d+/);

  // The boot bench's load-only payload: the same bundle without its entry call, and nothing else.
  const loaded = loadOnly(code);
  assert.is(loaded.length, code.trimEnd().lastIndexOf("import.meta.main") + 1);
  checkSyntax(loaded);
  const quiet = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "-", "--version"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = quiet.stdin.getWriter();
  await w.write(new TextEncoder().encode(loaded));
  await w.close();
  const q = await quiet.output();
  assert.is(q.code, 0, new TextDecoder().decode(q.stderr));
  assert.is(new TextDecoder().decode(q.stdout), ""); // loaded, never ran main
  assert.throws(() => loadOnly("console.log(1);"), /entry call/);
});

test("bundle() four at once into an empty DENO_DIR: all succeed (esbuild's install races)", async () => {
  const denoDir = Deno.env.get("DENO_DIR");
  Deno.env.set("DENO_DIR", `${dir}/empty-deno-dir`);
  try {
    const entry = `${dir}/at_once.ts`;
    Deno.writeTextFileSync(entry, `const at: string = "once";\nconsole.log(at);\n`);
    const outs = [0, 1, 2, 3].map((i) => `${dir}/at_once_${i}.js`);
    // All settle before the test ends: a bundle still running could recreate `dir` after it.
    const results = await Promise.allSettled(outs.map((out) => bundle(entry, out)));
    for (const r of results) if (r.status === "rejected") throw r.reason;
    const first = Deno.readTextFileSync(outs[0]!);
    for (const out of outs) assert.ok(Deno.readTextFileSync(out) === first, `${out} differs`);
  } finally {
    if (denoDir === undefined) Deno.env.delete("DENO_DIR");
    else Deno.env.set("DENO_DIR", denoDir);
  }
});

test("bundle() takes node:sqlite by import() only (the ledger's engine), never statically", async () => {
  const dynamic = `${dir}/dynamic_sqlite.ts`;
  Deno.writeTextFileSync(
    dynamic,
    `async function open() {\n  const { DatabaseSync } = await import("node:sqlite");\n  return new DatabaseSync(":memory:");\n}\nconsole.log(typeof open);\n`,
  );
  await bundle(dynamic, `${dir}/dynamic_sqlite.js`);
  const statically = `${dir}/static_sqlite.ts`;
  Deno.writeTextFileSync(
    statically,
    `import { DatabaseSync } from "node:sqlite";\nconsole.log(new DatabaseSync(":memory:"));\n`,
  );
  try {
    await bundle(statically, `${dir}/static_sqlite.js`);
    assert.unreachable("bundled a static node:sqlite import");
  } catch (e) {
    assert.match((e as Error).message, "imports node:sqlite");
  }
});

test("bundle() refuses a program that imports a node: module, naming it", async () => {
  const entry = `${dir}/uses_node.ts`;
  Deno.writeTextFileSync(
    entry,
    `import { EventEmitter } from "node:events";\nconsole.log(new EventEmitter());\n`,
  );
  try {
    await bundle(entry, `${dir}/uses_node.js`);
    assert.unreachable("bundled a program that loads Node compat");
  } catch (e) {
    assert.match((e as Error).message, "imports node:events");
  }
  await bundle(entry, `${dir}/uses_node.js`, { allowNode: ["node:events"] });
});

test.run();
