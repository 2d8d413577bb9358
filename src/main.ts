/** The `linkd` executable. */
import { main } from "./cli/main.ts";

if (import.meta.main) {
  const code = await main(Deno.args);
  // The daemon ends at once, whatever a library may still hold open. A short command (status,
  // provision, ledger) ends by itself instead: Deno writes V8's code cache of the program when
  // it ends normally, never after Deno.exit(), and without it every run compiles the whole
  // bundle again (`--no-lazy`, scripts/runtime.ts): 92 → 35-45 ms per `linkd --version` here.
  if (Deno.args[0] === "run") Deno.exit(code);
  Deno.exitCode = code;
}
