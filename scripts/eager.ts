/**
 * Module bodies compiled with the bundle, so that V8's code cache holds them.
 *
 * Why: Deno makes a module's V8 code cache right after compiling it, before running it, so the
 * cache holds only what V8 compiled eagerly: the top level, and functions V8 expects to be
 * called at once. Every other function is parsed and compiled on its first call, at every boot.
 * `deno bundle --minify` puts each module's body in a function, `var x=j(()=>{...})` (esbuild's
 * lazy module initializer), and every one of them runs at boot; compiling them lazily cost
 * about 10 ms of linkd's boot on this machine. V8 compiles eagerly a function expression in
 * parentheses (its "likely called" heuristic, the PIFE hint), and this module adds exactly
 * those parentheses: `var x=j((()=>{...}))`. Same program, same meaning; the bodies now come
 * from the code cache. The functions inside a body stay lazy, so the cache grows by the bodies
 * alone (65 → 165 KB for linkd).
 *
 * The bodies' ends are found with a scanner of JavaScript's lexical grammar (strings, template
 * literals and their substitutions, regular expressions, comments) that only counts brackets.
 * A wrong end cannot give a different valid program: the inserted ")" would close the
 * parenthesis inside an open brace, which is a syntax error; the bundler checks the result
 * compiles (scripts/bundle.ts).
 */

/** Words after which a "/" starts a regular expression, not a division. */
const REGEX_AFTER_WORD = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
  "extends",
]);

const WORD = /[\w$]+/y;

type Prev =
  /**
   * After an operator, an opening bracket or "}" (in minified code the end of a block): an
   * expression may start, "/" is a regex.
   */
  | "operator"
  /** After a value (name, literal, ")" or "]"): "/" divides. */
  | "value";

/** A syntax error of the scanner: the input is not the JavaScript it expects. */
export class ScanError extends Error {
  override name = "ScanError";
}

/**
 * Index of the "}" that closes the "{" at `open` in `code`, skipping strings, template
 * literals, regular expressions and comments. Throws ScanError on unbalanced input.
 */
export function closingBrace(code: string, open: number): number {
  if (code[open] !== "{") throw new ScanError(`no "{" at ${open}`);
  const stack: string[] = [];
  let prev: Prev = "operator";
  let i = open;
  const n = code.length;
  /** Scans template characters from `j` (just after "`" or a substitution's "}"). */
  const template = (j: number): number => {
    for (;;) {
      if (j >= n) throw new ScanError("unterminated template literal");
      const c = code[j];
      if (c === "\\") j += 2;
      else if (c === "`") {
        prev = "value";
        return j + 1;
      } else if (c === "$" && code[j + 1] === "{") {
        stack.push("${");
        prev = "operator";
        return j + 2;
      } else j++;
    }
  };
  while (i < n) {
    const c = code[i]!;
    if (c === " " || c === "\n" || c === "\t" || c === "\r") {
      i++;
    } else if (c === "/" && code[i + 1] === "/") {
      const eol = code.indexOf("\n", i);
      i = eol < 0 ? n : eol;
    } else if (c === "/" && code[i + 1] === "*") {
      const end = code.indexOf("*/", i + 2);
      if (end < 0) throw new ScanError("unterminated comment");
      i = end + 2;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (code[j] !== c) {
        if (j >= n || code[j] === "\n") throw new ScanError("unterminated string");
        j += code[j] === "\\" ? 2 : 1;
      }
      i = j + 1;
      prev = "value";
    } else if (c === "`") {
      i = template(i + 1);
    } else if (c === "/") {
      if (prev === "value") {
        i++;
        prev = "operator";
        continue;
      }
      let j = i + 1;
      let inClass = false;
      for (;;) {
        const d = code[j];
        if (d === undefined || d === "\n") throw new ScanError("unterminated regular expression");
        if (d === "\\") j++;
        else if (inClass) inClass = d !== "]";
        else if (d === "[") inClass = true;
        else if (d === "/") break;
        j++;
      }
      j++;
      WORD.lastIndex = j; // flags
      i = WORD.test(code) ? WORD.lastIndex : j;
      prev = "value";
    } else if (/[\w$]/.test(c) || c > "\x7f") {
      WORD.lastIndex = i;
      if (!WORD.test(code)) {
        i++; // a non-ASCII identifier character
        prev = "value";
        continue;
      }
      const word = code.slice(i, WORD.lastIndex);
      i = WORD.lastIndex;
      prev = REGEX_AFTER_WORD.has(word) ? "operator" : "value";
    } else if (c === "{" || c === "(" || c === "[") {
      stack.push(c);
      i++;
      prev = "operator";
    } else if (c === "}") {
      const top = stack.pop();
      if (top === "${") {
        i = template(i + 1);
      } else if (top === "{") {
        if (stack.length === 0) return i;
        i++;
        prev = "operator";
      } else throw new ScanError(`unbalanced "}" at ${i}`);
    } else if (c === ")" || c === "]") {
      const top = stack.pop();
      if (top !== (c === ")" ? "(" : "[")) throw new ScanError(`unbalanced "${c}" at ${i}`);
      i++;
      prev = "value";
    } else if ((c === "+" || c === "-") && code[i + 1] === c && prev === "value") {
      i += 2; // a postfix "++" or "--" leaves a value: `a++/b` divides
    } else {
      i++;
      prev = "operator";
    }
  }
  throw new ScanError("unterminated block");
}

/**
 * The names of esbuild's module wrappers in a minified bundle: the lazy ES module initializer
 * `var j=(t,e)=>()=>(t&&(e=t(t=0)),e)` and the CommonJS one
 * `var Ou=(t,e)=>()=>(e||t((e={exports:{}}).exports,e),e.exports)`.
 */
export function moduleWrappers(code: string): string[] {
  const names: string[] = [];
  const esm = /(?:var |,)([\w$]+)=\(([\w$]+),([\w$]+)\)=>\(\)=>\(\2&&\(\3=\2\(\2=0\)\),\3\)/g;
  const cjs =
    /(?:var |,)([\w$]+)=\(([\w$]+),([\w$]+)\)=>\(\)=>\(\3\|\|\2\(\(\3=\{exports:\{\}\}\)\.exports,\3\),\3\.exports\)/g;
  for (const m of code.matchAll(esm)) names.push(m[1]!);
  for (const m of code.matchAll(cjs)) names.push(m[1]!);
  return names;
}

/**
 * Puts every module body handed to esbuild's wrappers in parentheses (see the module comment).
 * Returns the new code and how many bodies it wrapped.
 */
export function eagerModuleBodies(code: string): { code: string; wrapped: number } {
  const names = moduleWrappers(code);
  if (names.length === 0) return { code, wrapped: 0 };
  const alt = names.map((s) => s.replace(/\$/g, "\\$")).join("|");
  // `j(()=>{`, `j(async()=>{`, `Ou((t,e)=>{`: the wrapper called with an arrow function.
  const call = new RegExp(
    `(?<![\\w$.])(?:${alt})\\((?=(?:async)?\\((?:[\\w$]+(?:,[\\w$]+)*)?\\)=>\\{)`,
    "g",
  );
  const out: string[] = [];
  let from = 0;
  let wrapped = 0;
  for (const m of code.matchAll(call)) {
    const start = m.index + m[0].length; // the arrow function's first character
    if (start < from) continue; // inside a body already wrapped
    const open = code.indexOf("{", code.indexOf("=>", start));
    const close = closingBrace(code, open);
    out.push(code.slice(from, start), "(", code.slice(start, close + 1), ")");
    from = close + 1;
    wrapped++;
  }
  out.push(code.slice(from));
  return { code: out.join(""), wrapped };
}
