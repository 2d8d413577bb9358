/**
 * `npm pack` of one package version, the way build.ts fetches the aarch64 Deno runtime: with
 * retries that npm accepts on a real fetch, and npm's own error lines in the error when it fails.
 */
import { exists, run } from "./tool.ts";

/** The file `npm pack` writes for `name@version`: `@scope/pkg` gives `scope-pkg-<version>.tgz`. */
export function tarballName(name: string, version: string): string {
  return `${name.replace(/^@/, "").replace("/", "-")}-${version}.tgz`;
}

/** npm's fetch retries when the environment does not set them: one retry, after 1 to 10 s. */
const NPM_FETCH_DEFAULTS = { retries: "1", retry_mintimeout: "1000", retry_maxtimeout: "10000" };

/**
 * The fetch-retry settings for one `npm pack`, as environment variables: `env`'s own (either
 * case, as npm reads them) where they are whole numbers, else NPM_FETCH_DEFAULTS, with the
 * minimum timeout never above the maximum. Both cases are set so that neither can disagree.
 */
export function npmFetchEnv(env: Record<string, string | undefined>): Record<string, string> {
  const get = (key: keyof typeof NPM_FETCH_DEFAULTS): string => {
    const v = env[`npm_config_fetch_${key}`] ?? env[`NPM_CONFIG_FETCH_${key.toUpperCase()}`];
    return v !== undefined && /^\d+$/.test(v) ? v : NPM_FETCH_DEFAULTS[key];
  };
  const max = get("retry_maxtimeout");
  const min = String(Math.min(Number(get("retry_mintimeout")), Number(max)));
  const settings = { retries: get("retries"), retry_mintimeout: min, retry_maxtimeout: max };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    out[`npm_config_fetch_${key}`] = value;
    out[`NPM_CONFIG_FETCH_${key.toUpperCase()}`] = value;
  }
  return out;
}

/** At most this many of npm's error lines go into an error, each cut to NPM_LINE_CHARS. */
const NPM_ERROR_LINES = 5;
const NPM_LINE_CHARS = 240;

/**
 * npm's own error lines in its output (`npm error ...`; `npm ERR! ...` before npm 9), in order,
 * without repeats, stack frames, dumped objects or the pointer to its log file (which lives in
 * the npm cache); at most NPM_ERROR_LINES, each cut to NPM_LINE_CHARS.
 */
export function npmErrorLines(output: string): string[] {
  const lines = output.split("\n").map((l) => l.trimEnd()).filter((l) =>
    /^npm (?:error|ERR!) [A-Za-z]/.test(l) && !l.includes("A complete log of this run")
  );
  return [...new Set(lines)].slice(0, NPM_ERROR_LINES).map((l) =>
    l.length > NPM_LINE_CHARS ? `${l.slice(0, NPM_LINE_CHARS - 1)}…` : l
  );
}

/**
 * `npm pack name@version` into `dir`; the tarball's path. `env` is added to this process's
 * environment (registry, npm cache, retries); npmFetchEnv() settles the retries. On failure the
 * error's first line names the command and each further line is one of npm's error lines
 * (npmErrorLines()), indented; else the last line npm printed.
 */
export async function npmPack(
  name: string,
  version: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<string> {
  const spec = `${name}@${version}`;
  const fetchEnv = npmFetchEnv({ ...Deno.env.toObject(), ...env });
  const r = await run("npm", ["pack", spec, "--pack-destination", dir, "--loglevel=error"], {
    env: { ...env, ...fetchEnv },
  });
  const tgz = `${dir}/${tarballName(name, version)}`;
  if (r.ok && exists(tgz)) return tgz;
  const npmLines = npmErrorLines(r.stderr);
  const last = r.stderr.trim().split("\n").pop()?.trim();
  const why = npmLines.length > 0
    ? npmLines
    : [r.ok ? `npm wrote no ${tarballName(name, version)}` : last || "npm printed nothing"];
  throw new Error([`\`npm pack ${spec}\` failed`, ...why.map((l) => `  ${l}`)].join("\n"));
}
