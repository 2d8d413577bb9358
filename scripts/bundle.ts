/**
 * The one way linkd's bundle is made (build.ts and the boot bench both use it): `deno bundle
 * --minify` of src/main.ts, then one checked rewrite, then a guard.
 *
 * Why: every `node:` import in the bundle makes Deno load its Node compatibility layer at
 * start, 20–40 ms and 5–8 MB on this machine, before linkd runs a line. linkd's own code imports
 * none. The one that `deno bundle` adds is `createRequire` from `node:module`, the shim it
 * gives CommonJS packages; tweetnacl (CommonJS) is the only one, and its only `require` is the
 * fallback `require("crypto")` for runtimes without Web Crypto, never taken on Deno (it checks
 * `self.crypto.getRandomValues` first). The rewrite replaces the shim by a function that throws
 * if ever called. The guard then refuses a bundle that still imports any `node:` module, so a
 * new dependency that pulls in Node compat fails the build instead of slowing every boot.
 *
 * The result is compiled once to prove it is still valid JavaScript. (V8 compiles all of it at
 * once and keeps it in the code cache: `--no-lazy`, scripts/runtime.ts.)
 */

/**
 * `node:` modules the bundle may load with a dynamic `import()`, at the moment a command needs
 * them and never at boot: `node:sqlite`, the embedded engine of the plant's ledger
 * (src/ledger/sqlite.ts), which only `linkd provision --ledger sqlite:...` and `linkd ledger`
 * open on a factory station. A static import of any `node:` module is refused.
 */
export const DYNAMIC_NODE_IMPORTS = ["node:sqlite"];

/** The shim `deno bundle` writes for CommonJS modules (one binding, minified name). */
const REQUIRE_SHIM =
  /import\{createRequire as __deno_internal_createRequire\} from "node:module";var ([\w$]+)=__deno_internal_createRequire\(import\.meta\.url\);/g;

/** `node:` specifiers imported (statically or dynamically) by bundled code. */
export function nodeImports(code: string): string[] {
  const found = new Set<string>();
  for (const m of code.matchAll(/["'`](node:[a-z_/]+)["'`]/g)) found.add(m[1]!);
  return [...found].sort();
}

/** Replaces the CommonJS `require` shim (see above); returns the code and the shims' names. */
export function dropRequireShim(code: string): { code: string; requires: string[] } {
  const requires: string[] = [];
  const out = code.replace(REQUIRE_SHIM, (_m, name: string) => {
    requires.push(name);
    return `var ${name}=function(m){throw new Error("linkd's bundle has no require(): "+m)};`;
  });
  return { code: out, requires };
}

/** Compiles `code` (a bundle: no export statement) without running it. Throws a SyntaxError. */
export function checkSyntax(code: string): void {
  const AsyncFunction = (async () => {}).constructor as new (body: string) => unknown;
  // A function body takes top-level await and dynamic import(), not import.meta or an import
  // statement (the `node:` imports a caller allowed): both are taken out of the copy checked.
  new AsyncFunction(
    code.replace(/\bimport\.meta\b/g, "({})")
      .replace(/\bimport\s*(?:[\w$*{}\s,]+?\s*from\s*)?("[^"\n]*"|'[^'\n]*');/g, ""),
  );
}

/**
 * How often `deno bundle` is tried when it fails while installing esbuild. Its first run with an
 * empty DENO_DIR puts esbuild there, and two at once (the tests run two files at a time, as CI
 * does with an empty DENO_DIR) can race: "failed to copy esbuild binary ... No such file or
 * directory" (Deno's bug; denoland/deno#34845 fixed one form of it). A second try finds it.
 */
const ESBUILD_INSTALL_TRIES = 3;

/** `deno bundle --minify` of `entry` into `out`; null, or what Deno printed when it failed. */
async function denoBundle(entry: string, out: string): Promise<string | null> {
  for (let attempt = 1;; attempt++) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--minify", "--platform", "deno", "-o", out, entry],
      env: { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (r.success) return null;
    const stderr = new TextDecoder().decode(r.stderr).trim();
    if (attempt >= ESBUILD_INSTALL_TRIES || !/esbuild binary|Text file busy/.test(stderr)) {
      return stderr;
    }
    await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
  }
}

/**
 * Bundles `entry` into `out`. Throws when `deno bundle` fails or the result still imports a
 * `node:` module; `allowNode` lists the ones a caller accepts (none for linkd).
 */
export async function bundle(
  entry: string,
  out: string,
  opts: { allowNode?: string[] } = {},
): Promise<void> {
  const error = await denoBundle(entry, out);
  if (error !== null) throw new Error(`Cannot bundle ${entry}: ${error}`);
  const { code, requires } = dropRequireShim(Deno.readTextFileSync(out));
  // A call of the (now throwing) require is not an import: tweetnacl's `require("node:crypto")`.
  let imports = code;
  for (const spec of DYNAMIC_NODE_IMPORTS) {
    imports = imports.replaceAll(`import("${spec}")`, "");
  }
  for (const name of requires) {
    const escaped = name.replace(/\$/g, "\\$");
    imports = imports.replace(new RegExp(`(?<![\\w$])${escaped}\\("node:[a-z_/]+"\\)`, "g"), "");
  }
  const left = nodeImports(imports).filter((s) => !(opts.allowNode ?? []).includes(s));
  if (left.length > 0) {
    throw new Error(
      `Cannot bundle ${entry}: it imports ${
        left.join(", ")
      }; each loads Deno's Node compatibility layer at every boot`,
    );
  }
  try {
    checkSyntax(code);
  } catch (e) {
    throw new Error(
      `Cannot bundle ${entry}: the result does not compile (${(e as Error).message})`,
    );
  }
  Deno.writeTextFileSync(out, code);
}
