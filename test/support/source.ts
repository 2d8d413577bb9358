/** The repository's own TypeScript files, for the tests that check how they import each other. */

/** The repository root, with a trailing slash. */
const root = new URL("../../", import.meta.url).pathname;

/** Every file under `dir` (repository path) whose name ends in `.ts`, sorted. */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${root}${dir}`)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}
