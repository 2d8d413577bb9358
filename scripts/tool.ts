/**
 * How the build runs a tool (npm, tar, `deno compile`): Deno's update check, prompts and colours
 * off, both outputs captured together for messages, a tool that cannot start reported as a
 * failure rather than thrown.
 */

export const quietEnv = { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" };

/** Runs `cmd`; `stderr` is everything it printed (stderr, then stdout). */
export async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<{ ok: boolean; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env: { ...quietEnv, ...opts.env },
      clearEnv: opts.clearEnv ?? false,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    return { ok: out.success, stderr };
  } catch (e) {
    return { ok: false, stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** True when something is at `path` (a file, a folder, anything `stat` follows to). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
