import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code } from "../errors.ts";
import { codeOf } from "../../test/support/assert.ts";
import { busLogin } from "./credentials.ts";

const dir = Deno.makeTempDirSync({ prefix: "linkd-buslogin-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

function file(name: string, content: string | Uint8Array): string {
  const p = `${dir}/${name}`;
  if (typeof content === "string") Deno.writeTextFileSync(p, content);
  else Deno.writeFileSync(p, content);
  return p;
}

test("busLogin() reads the password file's one line", () => {
  assert.equal(busLogin({ username: "linkd", passwordFile: file("a", "s3cret\n") }), {
    username: "linkd",
    password: "s3cret",
  });
  assert.equal(
    busLogin({ username: "linkd", passwordFile: file("b", "s3cret") }).password,
    "s3cret",
  );
  assert.equal(busLogin({ username: "linkd", passwordFile: file("c", "") }), { username: "linkd" });
});

test("busLogin() refuses a missing, oversized, multi-line or binary file without showing it", () => {
  const cases: [string, string | Uint8Array][] = [
    ["pw-1", "p".repeat(1025)],
    ["pw-2", "hunter-one\nhunter-two\n"],
    ["pw-3", new Uint8Array([0xff, 0xfe, 0x00])],
  ];
  for (const [name, content] of cases) {
    const path = file(name, content);
    assert.is(codeOf(() => busLogin({ username: "linkd", passwordFile: path })), Code.CONFIG, name);
    try {
      busLogin({ username: "linkd", passwordFile: path });
    } catch (e) {
      assert.not.match(String((e as Error).message), /pppp|hunter/, "the content is never shown");
    }
  }
  assert.is(
    codeOf(() => busLogin({ username: "linkd", passwordFile: `${dir}/none` })),
    Code.CONFIG,
  );
  assert.is(codeOf(() => busLogin({ username: "linkd", passwordFile: "/dev/zero" })), Code.CONFIG);
});

test.run();
