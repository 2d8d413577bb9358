/**
 * `--ledger URL`: which engine, where. `sqlite:PATH` (a file on this station, created when
 * missing; a relative path is the working folder's) or `postgres://...` / `postgresql://...`
 * (the plant's database). Anything else is a command-line mistake (exit 64). Each engine is
 * loaded only when its ledger is opened.
 */
import { Code, LinkdError } from "../errors.ts";
import { hasControl } from "../text.ts";
import { Ledger } from "./ledger.ts";

/** Longest `--ledger` value. */
const MAX_URL_CHARS = 2048;

export type LedgerAddress = { engine: "sqlite"; path: string } | {
  engine: "postgres";
  url: string;
};

/** Parses a `--ledger` value, or throws USAGE. */
export function parseLedgerUrl(value: string): LedgerAddress {
  if (value.length <= MAX_URL_CHARS && !hasControl(value)) {
    if (value.startsWith("sqlite:") && value.length > "sqlite:".length) {
      return { engine: "sqlite", path: value.slice("sqlite:".length) };
    }
    if (/^postgres(?:ql)?:\/\/[^/?#]+/i.test(value)) return { engine: "postgres", url: value };
  }
  throw new LinkdError(
    Code.USAGE,
    "Cannot use --ledger: expected sqlite:PATH or postgres://USER@HOST[:PORT]/DB",
  );
}

/** Opens the ledger at `value` (a `--ledger` value). */
export async function openLedger(value: string): Promise<Ledger> {
  const a = parseLedgerUrl(value);
  if (a.engine === "sqlite") {
    const { openSqliteLedger } = await import("./sqlite.ts");
    return new Ledger(await openSqliteLedger(a.path));
  }
  const { openPostgresLedger } = await import("./postgres.ts");
  return new Ledger(await openPostgresLedger(a.url));
}
