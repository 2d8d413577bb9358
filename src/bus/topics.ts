/**
 * The rule for `P`, the bus topic prefix (CONTRACT.md section 4, `bus.prefix`). The bus owns it
 * and config.ts calls it, so that a prefix the configuration accepts is one the bus takes: the
 * rule written twice once let config.ts accept 200 characters while the bus refused more than
 * 64, and `linkd run` crashed with exit 70.
 *
 * 64 characters: far beyond any real prefix (`linkd`, `home/kitchen/linkd`), and short enough
 * that every topic linkd builds from it (`P/capabilities`, response topics under `P/reply/`, at
 * most 256 characters) leaves room for what follows it.
 *
 * Nearly a leaf module: it imports only ../text.ts (the control-character rule), so that
 * config.ts can use it without loading the bus.
 */
import { hasControl } from "../text.ts";

/** Longest topic prefix, in characters. */
export const MAX_PREFIX_CHARS = 64;

/**
 * Why `prefix` cannot be the topic prefix, as a phrase for a message ("no wildcards + or #"),
 * or null when it can: 1 to MAX_PREFIX_CHARS characters, one or more topic levels separated by
 * `/`, none empty, no wildcard, no control character, not starting with `$` (the broker's).
 */
export function prefixProblem(prefix: string): string | null {
  if (prefix.length === 0) return "not empty";
  if (prefix.length > MAX_PREFIX_CHARS) {
    return `at most ${MAX_PREFIX_CHARS} characters, not ${prefix.length}`;
  }
  if (prefix.includes("+") || prefix.includes("#")) return "no wildcards + or #";
  if (hasControl(prefix)) return "no control characters";
  if (prefix.startsWith("/") || prefix.endsWith("/")) return "no leading or trailing slash";
  if (prefix.split("/").some((level) => level === "")) return "no empty topic level";
  if (prefix.startsWith("$")) return "no leading $ (reserved for the broker)";
  return null;
}
