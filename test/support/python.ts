/**
 * Debian's Python as an independent peer: python3-nacl, python3-cbor2, hmac/hashlib.
 * Always /usr/bin/python3: the `python3` on PATH may be another interpreter without them.
 */
export const PYTHON = "/usr/bin/python3";

/** True when PYTHON can import every module in `modules` (comma separated, as in `import`). */
export async function pythonHas(modules: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(PYTHON, {
      args: ["-c", `import ${modules}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Runs `script` with `input` as JSON on stdin and returns its stdout parsed as JSON. */
export async function python(script: string, input: unknown): Promise<unknown> {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(input)));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(`python failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * `test` when the peer is there; otherwise `test.skip` with a warning. On CI (env CI set) the
 * peer must be there, so a missing one fails instead of skipping.
 */
export function whenPython<T extends { skip: unknown }>(test: T, have: boolean, what: string): T {
  if (have || Deno.env.get("CI")) return test;
  console.warn(`SKIPPING ${what}: ${PYTHON} cannot import it`);
  return test.skip as T;
}
