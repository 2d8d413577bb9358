/**
 * `deno task build`: bundles linkd into one minified program under target/ and prints each
 * artifact's size and SHA-256. (The SoC payloads, compiled or runtime-plus-bundle, are added
 * with the boot daemon: see the issue on the firmware build.)
 */
import { createHash } from "node:crypto";

const root = new URL(".", import.meta.url).pathname;
const target = `${root}target`;
Deno.mkdirSync(target, { recursive: true });

const bundle = `${target}/linkd.js`;
const out = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--quiet", "--minify", "--platform", "deno", "-o", bundle, `${root}src/main.ts`],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!out.success) {
  console.error("build: Cannot bundle src/main.ts: deno bundle failed (see above)");
  Deno.exit(1);
}

for (const path of [bundle]) {
  const bytes = Deno.readFileSync(path);
  const sha = createHash("sha256").update(bytes).digest("hex");
  console.log(`${path.replace(root, "")}  ${bytes.length} bytes  sha256 ${sha}`);
}
