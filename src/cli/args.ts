/**
 * The command line of CONTRACT.md section 1, parsed strictly: every mistake is
 * `LinkdError(Code.USAGE)` (exit 64) with one line that names the problem and points to
 * `linkd --help`. Values are taken as given; what they must look like (a serial's characters,
 * a file's existence) is checked by the code that uses them.
 *
 * Flags take `--flag value` or `--flag=value`. A separate value never starts with `--`
 * (`--serial --product-id X` is a missing value); use `--flag=--odd` for such a value.
 * An empty value is a usage error, except for `--serial`, `--product-id` and `--client-id`:
 * those are passed on, and the provisioning checks refuse them as bad data (exit 65).
 */
import { Code, LinkdError } from "../errors.ts";

export type Command =
  | { readonly cmd: "run"; readonly config?: string }
  | { readonly cmd: "status"; readonly config?: string; readonly json: boolean }
  | {
    readonly cmd: "provision";
    readonly config?: string;
    readonly serial: string;
    readonly productId: string;
    readonly clientId: string;
    readonly lineKey?: string;
    readonly recordOut?: string;
  }
  | {
    readonly cmd: "repair";
    readonly config?: string;
    readonly serial: string;
    readonly productId: string;
    readonly clientId: string;
    readonly lineKey?: string;
    readonly recordOut?: string;
  }
  | { readonly cmd: "logout"; readonly config?: string }
  | { readonly cmd: "factory-reset"; readonly config?: string }
  | { readonly cmd: "version" }
  | { readonly cmd: "help" };

export const USAGE_TEXT = `linkd: the account-linking runtime of the speaker firmware

Usage:
  linkd run --config FILE
  linkd status --config FILE [--json]
  linkd provision --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE] [--record-out FILE]
  linkd repair --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE] [--record-out FILE]
  linkd logout --config FILE
  linkd factory-reset --config FILE
  linkd --version

Subcommands:
  run            the daemon started at boot; stays up until SIGTERM
  status         prints provisioning, link state, scopes, token expiry and store health
  provision      factory line: writes the device identity and keys
  repair         rework station: a device whose identity record is damaged or lost (see
                 linkd status) gets the same identity back; give the identity the line
                 recorded for it (its OTP is bound to it: any other is refused with 73)
  logout         forgets the user's tokens, keeps the identity
  factory-reset  forgets everything a user did, keeps the factory identity

--config falls back to the LINKD_CONFIG environment variable, then /etc/linkd/linkd.json.
A device is provisioned once its OTP holds a root key, and keeps that identity for life:
provision continues a cut-short run only with the same serial, product id and client id
(anything else is 73), and repair gives a damaged or lost identity back.
Exit codes: 0 ok, 64 bad command line, 65 bad data, 66 missing file (or one that could
not be written), 69 auth server unreachable, 73 already provisioned, 75 flash in use by a
running linkd, 78 bad config.
`;

type Subcommand = "run" | "status" | "provision" | "repair" | "logout" | "factory-reset";

/** Flags each subcommand takes; `true` marks a flag with a value. */
const FLAGS: Readonly<Record<Subcommand, Readonly<Record<string, boolean>>>> = {
  run: { config: true },
  status: { config: true, json: false },
  provision: {
    config: true,
    serial: true,
    "product-id": true,
    "client-id": true,
    "line-key": true,
    "record-out": true,
  },
  repair: {
    config: true,
    serial: true,
    "product-id": true,
    "client-id": true,
    "line-key": true,
    "record-out": true,
  },
  logout: { config: true },
  "factory-reset": { config: true },
};

const REQUIRED: Readonly<Record<Subcommand, readonly string[]>> = {
  run: [],
  status: [],
  provision: ["serial", "product-id", "client-id"],
  repair: ["serial", "product-id", "client-id"],
  logout: [],
  "factory-reset": [],
};

/** Flags whose empty value (`--serial ""`, `--serial=`) is data for a later check to refuse. */
const EMPTY_IS_DATA: ReadonlySet<string> = new Set(["serial", "product-id", "client-id"]);

function isSubcommand(s: string): s is Subcommand {
  return Object.hasOwn(FLAGS, s);
}

/** Shows a piece of the command line in a message: one line, at most 60 characters. */
function show(s: string): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length <= 60 ? t : `${t.slice(0, 57)}...`;
}

function usage(what: string): never {
  throw new LinkdError(Code.USAGE, `${what}; see linkd --help`);
}

/** Parses the arguments after the program name. */
export function parseArgs(argv: readonly string[]): Command {
  const first = argv[0];
  if (first === undefined || first === "--help" || first === "-h") return { cmd: "help" };
  if (first === "--version") {
    if (argv.length > 1) usage("--version takes no other arguments");
    return { cmd: "version" };
  }
  if (first.startsWith("-")) {
    usage(`Expected a subcommand before ${show(first.split("=")[0] ?? first)}`);
  }
  if (!isSubcommand(first)) usage(`Unknown subcommand "${show(first)}"`);

  const sub = first;
  const takes = FLAGS[sub];
  const seen = new Map<string, string | true>();
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { cmd: "help" };
    if (arg.startsWith("-") && !arg.startsWith("--") && arg !== "-") {
      usage(`Unknown flag ${show(arg)} for linkd ${sub}`);
    }
    if (!arg.startsWith("--") || arg === "--") {
      usage(`Unexpected argument "${show(arg)}" for linkd ${sub}`);
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const hasValue = takes[name];
    if (!Object.hasOwn(takes, name) || hasValue === undefined) {
      usage(`Unknown flag --${show(name)} for linkd ${sub}`);
    }
    if (seen.has(name)) usage(`Flag --${name} is given twice`);
    if (!hasValue) {
      if (eq >= 0) usage(`Flag --${name} takes no value`);
      seen.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        value = next;
        i++;
      }
    }
    // An empty serial, product id or client id is bad input data (exit 65, from the
    // provisioning checks), not a bad command line: it is passed on as given.
    if (value === undefined || (value === "" && !EMPTY_IS_DATA.has(name))) {
      usage(`Flag --${name} needs a value`);
    }
    seen.set(name, value);
  }
  for (const name of REQUIRED[sub]) {
    if (!seen.has(name)) usage(`Missing --${name} for linkd ${sub}`);
  }

  const str = (name: string): string | undefined => {
    const v = seen.get(name);
    return typeof v === "string" ? v : undefined;
  };
  const config = str("config");
  const withConfig = config === undefined ? {} : { config };
  switch (sub) {
    case "run":
    case "logout":
    case "factory-reset":
      return { cmd: sub, ...withConfig };
    case "status":
      return { cmd: "status", ...withConfig, json: seen.has("json") };
    case "provision":
    case "repair": {
      const lineKey = str("line-key");
      const recordOut = str("record-out");
      return {
        cmd: sub,
        ...withConfig,
        serial: str("serial")!,
        productId: str("product-id")!,
        clientId: str("client-id")!,
        ...(lineKey === undefined ? {} : { lineKey }),
        ...(recordOut === undefined ? {} : { recordOut }),
      };
    }
  }
}
