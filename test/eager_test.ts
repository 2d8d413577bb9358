/**
 * scripts/eager.ts: the scanner finds the brace that closes a block through everything that can
 * hide a brace (strings, templates, regular expressions, comments), and eagerModuleBodies()
 * wraps exactly esbuild's module bodies without changing what the program does.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { closingBrace, eagerModuleBodies, moduleWrappers, ScanError } from "../scripts/eager.ts";
import { checkSyntax } from "../scripts/bundle.ts";

/** The end `closingBrace` finds for the block starting at the first "{" of `code`. */
const end = (code: string) => closingBrace(code, code.indexOf("{"));

test("closingBrace(): nesting, and braces inside strings and comments do not count", () => {
  assert.is(end("{a{b}c}d}"), 6);
  assert.is(end(`{x="}";y='}\\'}';}z}`), 16);
  assert.is(end("{/* } */ a // }\n}"), 16);
  assert.is(end("{}"), 1);
});

test("closingBrace(): template literals, with substitutions holding objects and templates", () => {
  const code = "{a=`}${ {b:1}.b }}`;c=`${`${'}'}`}`}!";
  assert.is(end(code), code.length - 2);
  assert.is(end("{t=`\\${}`}x"), 9);
});

test("closingBrace(): a regular expression may hold braces and slashes, a division not", () => {
  assert.is(end("{r=/[}/]\\}/g.test(s)}."), 20);
  assert.is(end("{return/}/.test(x)}."), 18);
  assert.is(end("{x=a/2/b;y={}}."), 13);
  assert.is(end("{x=(a)/2;y=b[0]/2/c}."), 19);
  assert.is(end("{i++/2;}."), 7);
  assert.is(end("{if(a){}/}/.test(b)}."), 19);
});

test("closingBrace(): unbalanced or unterminated input is a ScanError", () => {
  for (const bad of ["{", "{(}", "{'}", "{`}", "{/}", "{/*}", "{]}"]) {
    assert.throws(() => end(bad), (e: unknown) => e instanceof ScanError, bad);
  }
});

/** A miniature of `deno bundle --minify` output: esbuild's wrappers and two module bodies. */
const MINI = [
  "var j=(t,e)=>()=>(t&&(e=t(t=0)),e);",
  "var Ou=(t,e)=>()=>(e||t((e={exports:{}}).exports,e),e.exports);",
  "var A,a=j(()=>{A={n:`}`,re:/}/};log.push('a')});",
  "var B,b=j(async()=>{await a();B=A.n+'b';log.push('b')});",
  "var C=Ou((x,m)=>{m.exports={c:1};log.push('c')});",
  "var D=j(()=>{});", // an empty module
].join("");

test("moduleWrappers() names esbuild's ES module and CommonJS wrappers", () => {
  assert.equal(moduleWrappers(MINI), ["j", "Ou"]);
  assert.equal(moduleWrappers("var j=1;"), []);
});

test("eagerModuleBodies() wraps each body in parentheses and nothing else; it runs alike", async () => {
  const { code, wrapped } = eagerModuleBodies(MINI);
  assert.is(wrapped, 4);
  assert.is(
    code,
    [
      "var j=(t,e)=>()=>(t&&(e=t(t=0)),e);",
      "var Ou=(t,e)=>()=>(e||t((e={exports:{}}).exports,e),e.exports);",
      "var A,a=j((()=>{A={n:`}`,re:/}/};log.push('a')}));",
      "var B,b=j((async()=>{await a();B=A.n+'b';log.push('b')}));",
      "var C=Ou(((x,m)=>{m.exports={c:1};log.push('c')}));",
      "var D=j((()=>{}));",
    ].join(""),
  );
  checkSyntax(code);
  const run = async (src: string) => {
    const log: string[] = [];
    const AsyncFunction = (async () => {}).constructor as new (
      ...args: string[]
    ) => (log: string[]) => Promise<unknown>;
    const r = await new AsyncFunction("log", `${src}await b();return [B,C().c,log.join()];`)(log);
    return r;
  };
  assert.equal(await run(code), await run(MINI));
  assert.equal(await run(code), ["}b", 1, "a,b,c"]);
});

test("checkSyntax() compiles a bundle without running it, and throws on a misplaced parenthesis", () => {
  checkSyntax(
    'import{x as y}from"node:events";var a=j((()=>{throw 1}));await a();import.meta.main;',
  );
  assert.throws(() => checkSyntax("var a=j((()=>{x={}));y=1}));"), SyntaxError);
  assert.throws(() => checkSyntax("var a=j((()=>{x=1});y=1}));"), SyntaxError);
});

test("eagerModuleBodies() leaves code without esbuild's wrappers as it is", () => {
  const code = "const j=(f)=>f;j(()=>{});";
  assert.equal(eagerModuleBodies(code), { code, wrapped: 0 });
});

test.run();
