/**
 * POSIX path helpers, the two linkd needs, without `node:path`: importing any `node:` module
 * makes Deno load its Node compatibility layer, 20–40 ms and several MB at every boot.
 * Same results as Node's `path.posix` (checked against it in paths_test.ts).
 */

/** The folder part of a path: `dirname("/etc/linkd/x.json")` is `/etc/linkd`. */
export function dirname(path: string): string {
  if (path.length === 0) return ".";
  const rooted = path[0] === "/";
  let end = -1;
  let sawName = false;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] === "/") {
      if (sawName) {
        end = i;
        break;
      }
    } else sawName = true;
  }
  if (end === -1) return rooted ? "/" : ".";
  if (rooted && end === 1) return "//";
  return path.slice(0, end);
}

/**
 * An absolute, normalized path: the segments joined right to left until one is absolute, the
 * rest resolved against the working folder; `.` and `..` folded, repeated slashes removed.
 */
export function resolve(...segments: string[]): string {
  let joined = "";
  for (let i = segments.length - 1; i >= 0 && !joined.startsWith("/"); i--) {
    const s = segments[i]!;
    if (s.length === 0) continue;
    joined = joined.length === 0 ? s : `${s}/${joined}`;
  }
  if (!joined.startsWith("/")) {
    joined = joined.length === 0 ? Deno.cwd() : `${Deno.cwd()}/${joined}`;
  }
  const out: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}
