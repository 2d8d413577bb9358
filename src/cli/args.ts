/**
 * The command line of CONTRACT.md section 1, parsed strictly: every mistake is
 * `LinkdError(Code.USAGE)` (exit 64) with one line that names the problem and, as git does,
 * points to the help that fixes it: `'frob' is not a linkd command; see 'linkd --help'`,
 * `Unknown option '--jsn' for linkd status; see 'linkd status --help'`.
 *
 * One table, SUBCOMMANDS, says what each subcommand takes; the parser and each subcommand's
 * help (`linkd help status`, `linkd status --help`) are both read from it, so they cannot drift.
 *
 * Options take `--option value` or `--option=value`; `-c FILE` (or `-cFILE`) is short for
 * `--config FILE`. A separate value never starts with `--` (`--serial --product-id X` is a
 * missing value); use `--option=--odd` for such a value. An empty value is a usage error, except
 * for `--serial`, `--product-id` and `--client-id`: those are passed on, and the provisioning
 * checks refuse them as bad data (exit 65). Bare `linkd` is `{ cmd: "usage" }`: the caller prints
 * the usage on stdout, one line on stderr (CONTRACT section 1), and exits 64.
 */
import { Code, LinkdError } from "../errors.ts";

export type Command =
  | { readonly cmd: "run"; readonly config?: string }
  | { readonly cmd: "status"; readonly config?: string; readonly json: boolean }
  | {
    /** The factory line (provision) and the rework station (repair) take the same identity. */
    readonly cmd: "provision" | "repair";
    readonly config?: string;
    readonly serial: string;
    readonly productId: string;
    readonly clientId: string;
    readonly lineKey?: string;
    readonly recordOut?: string;
    /** The plant's ledger (provision only), with the station's name: both or neither. */
    readonly ledger?: string;
    readonly station?: string;
  }
  | {
    readonly cmd: "ledger";
    readonly action: "export" | "verify";
    readonly ledger: string;
    /** Unix milliseconds: export the devices provisioned from then on. */
    readonly since?: number;
  }
  | { readonly cmd: "logout"; readonly config?: string }
  | { readonly cmd: "factory-reset"; readonly config?: string }
  | { readonly cmd: "version" }
  /** `linkd --help`, `linkd help [SUBCOMMAND]`, `linkd SUBCOMMAND --help`: stdout, exit 0. */
  | { readonly cmd: "help"; readonly topic?: Subcommand }
  /** Bare `linkd`: the usage on stdout, one line on stderr, exit 64. */
  | { readonly cmd: "usage" };

export const USAGE_TEXT = `linkd: the account-linking runtime of the speaker firmware

Usage:
  linkd run --config FILE
  linkd status --config FILE [--json]
  linkd provision --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE] [--record-out FILE]
                  [--ledger URL --station NAME]
  linkd repair --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE] [--record-out FILE]
               [--ledger URL --station NAME]
  linkd logout --config FILE
  linkd factory-reset --config FILE
  linkd ledger export --ledger URL [--since TIME]
  linkd ledger verify --ledger URL
  linkd help [SUBCOMMAND]
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
  ledger         the plant's ledger: export the provisioned devices as JSON lines, or
                 verify every signature and report gaps and duplicates
  help           prints this help, or a subcommand's options (also linkd SUBCOMMAND --help)
  version        prints the version (also linkd --version, linkd -V)

--config falls back to the LINKD_CONFIG environment variable, then /etc/linkd/linkd.json;
-c FILE is short for --config FILE.
A device is provisioned once its OTP holds a root key, and keeps that identity for life:
provision continues a cut-short run only with the same serial, product id and client id
(anything else is 73), and repair gives a damaged or lost identity back.
Exit codes: 0 ok, 64 bad command line, 65 bad data, 66 missing file (or one that could
not be written), 69 auth server (or the plant's ledger) unreachable, 73 already
provisioned (or the serial is in the ledger for another device), 75 flash in use by a
running linkd, 78 bad config.
`;

/** An option of a subcommand, as the parser and the subcommand's help see it. */
interface OptionSpec {
  /** What its value is called in the help; absent for a switch (`--json`). */
  readonly value?: string;
  /** A one-letter short form (`-c`). */
  readonly short?: string;
  readonly required?: true;
  /** An empty value is data for a later check to refuse (exit 65), not a usage error. */
  readonly emptyIsData?: true;
  /** What it does, and its default. */
  readonly help: string;
}

interface SubcommandSpec {
  /** What it does, in a sentence. */
  readonly about: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Positional arguments in the synopsis (`help` and `ledger` take one). */
  readonly operands?: string;
  /** The operand comes before the options (`linkd ledger export --ledger URL`). */
  readonly operandFirst?: true;
}

const CONFIG: OptionSpec = {
  value: "FILE",
  short: "c",
  help: "the configuration file (default: $LINKD_CONFIG, then /etc/linkd/linkd.json)",
};

const IDENTITY: Readonly<Record<string, OptionSpec>> = {
  config: CONFIG,
  serial: {
    value: "SN",
    required: true,
    emptyIsData: true,
    help: "the serial: 1 to 64 of A-Z a-z 0-9 . _ - (required)",
  },
  "product-id": {
    value: "PID",
    required: true,
    emptyIsData: true,
    help: "the product id of the device profile (required)",
  },
  "client-id": {
    value: "CID",
    required: true,
    emptyIsData: true,
    help: "the LWA client id of the security profile (required)",
  },
  "line-key": {
    value: "FILE",
    help:
      "sign with the line's Ed25519 key: a file (32-byte seed, raw or hex) or a PKCS#11 URI, pkcs11:... (default: unsigned)",
  },
  "record-out": {
    value: "FILE",
    help: "write the record as CBOR to a new FILE (default: not written)",
  },
};

const LEDGER: OptionSpec = {
  value: "URL",
  required: true,
  help: "the plant's ledger: sqlite:PATH or postgres://USER@HOST[:PORT]/DB (required)",
};

const PROVISION: Readonly<Record<string, OptionSpec>> = {
  ...IDENTITY,
  ledger: {
    value: "URL",
    help: "record the device in the plant's ledger, sqlite:PATH or postgres://... (default: none)",
  },
  station: {
    value: "NAME",
    help: "this station's name in the ledger: 1 to 64 of A-Z a-z 0-9 . _ - (with --ledger)",
  },
};

const SUBCOMMANDS = {
  run: {
    about: "The daemon started at boot: links, refreshes and serves the bus until SIGTERM",
    options: { config: CONFIG },
  },
  status: {
    about:
      "Prints provisioning, link state, granted scopes, token expiry and store health; never a secret",
    options: {
      config: CONFIG,
      json: { help: "print one JSON object instead of text (default: text)" },
    },
  },
  provision: {
    about: "Factory line: writes the device identity and keys, and prints the record as JSON",
    options: PROVISION,
  },
  repair: {
    about:
      "Rework station: gives a device whose identity record is damaged or lost the identity\n" +
      "the line recorded for it (any other is refused with 73)",
    options: PROVISION,
  },
  logout: { about: "Forgets the user's tokens, keeps the identity", options: { config: CONFIG } },
  "factory-reset": {
    about: "Forgets everything a user did, keeps the factory identity",
    options: { config: CONFIG },
  },
  ledger: {
    about: "The plant's ledger: export prints one JSON object per provisioned device (for the\n" +
      "cloud registration); verify checks every signature and reports gaps and duplicates\n" +
      "(exit 0 when all hold, 65 when not)",
    options: {
      ledger: LEDGER,
      since: {
        value: "TIME",
        help: "export: devices provisioned from TIME on, ISO 8601 or Unix ms (default: all)",
      },
    },
    operands: "export|verify",
    operandFirst: true,
  },
  help: {
    about: "Prints the usage of linkd, or the options of SUBCOMMAND",
    options: {},
    operands: "[SUBCOMMAND]",
  },
  version: { about: "Prints the version (also linkd --version, linkd -V)", options: {} },
} as const satisfies Readonly<Record<string, SubcommandSpec>>;

export type Subcommand = keyof typeof SUBCOMMANDS;

function isSubcommand(s: string): s is Subcommand {
  return Object.hasOwn(SUBCOMMANDS, s);
}

/** The options `sub` takes, by long name. */
function optionsOf(sub: Subcommand): Readonly<Record<string, OptionSpec>> {
  return SUBCOMMANDS[sub].options;
}

/** `linkd SUBCOMMAND --help`: the synopsis, what it does, one line per option with its default. */
export function helpText(sub: Subcommand): string {
  const spec: SubcommandSpec = SUBCOMMANDS[sub];
  const entries = Object.entries(spec.options);
  const synopsis = entries.map(([name, o]) => {
    const v = o.value === undefined ? "" : ` ${o.value}`;
    const form = o.short === undefined ? `--${name}${v}` : `-${o.short}${v}`;
    return o.required ? form : `[${form}]`;
  });
  if (spec.operands !== undefined) {
    if (spec.operandFirst) synopsis.unshift(spec.operands);
    else synopsis.push(spec.operands);
  }
  const rows: [string, string][] = entries.map(([name, o]) => [
    `${o.short === undefined ? "    " : `-${o.short}, `}--${name}${
      o.value === undefined ? "" : ` ${o.value}`
    }`,
    o.help,
  ]);
  rows.push(["-h, --help", "print this help"]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return [
    `Usage: linkd ${[sub, ...synopsis].join(" ")}`,
    "",
    spec.about,
    "",
    "Options:",
    ...rows.map(([left, text]) => `  ${left.padEnd(width)}${text}`),
  ].join("\n");
}

/** Shows a piece of the command line in a message: one line, at most 60 characters. */
function show(s: string): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length <= 60 ? t : `${t.slice(0, 57)}...`;
}

/** A usage error that points to the help of `sub`, or to linkd's own help. */
function usage(what: string, sub?: Subcommand): never {
  const help = sub === undefined ? "linkd --help" : `linkd ${sub} --help`;
  throw new LinkdError(Code.USAGE, `${what}; see '${help}'`);
}

function notACommand(s: string): never {
  usage(`'${show(s)}' is not a linkd command`);
}

/** Parses the arguments after the program name. */
export function parseArgs(argv: readonly string[]): Command {
  const first = argv[0];
  if (first === undefined) return { cmd: "usage" };
  if (first === "--version" || first === "-V") {
    if (argv.length > 1) usage(`${first} takes no other arguments`);
    return { cmd: "version" };
  }
  // `linkd --help status` is `linkd help status`, as with git.
  if (first === "--help" || first === "-h") return parseHelp(argv.slice(1));
  if (first.startsWith("-")) {
    const name = first.startsWith("--") ? first.split("=")[0]! : first.slice(0, 2);
    usage(`Unknown option '${show(name)}' before the subcommand`);
  }
  if (!isSubcommand(first)) notACommand(first);
  if (first === "help") return parseHelp(argv.slice(1), "help");
  if (first === "ledger") return parseLedger(argv.slice(1));
  return parseSubcommand(first, argv.slice(1));
}

/** `linkd ledger export|verify ...`: the action first, then the options. */
function parseLedger(rest: readonly string[]): Command {
  const [action, ...more] = rest;
  if (action === "--help" || action === "-h") return { cmd: "help", topic: "ledger" };
  if (action !== "export" && action !== "verify") {
    usage(
      action === undefined
        ? "Missing the action for linkd ledger: export or verify"
        : `'${show(action)}' is not a linkd ledger action (export or verify)`,
      "ledger",
    );
  }
  const cmd = parseSubcommand("ledger", more);
  if (cmd.cmd !== "ledger") return cmd; // --help
  if (action === "verify" && cmd.since !== undefined) {
    usage("Option --since is for linkd ledger export only", "ledger");
  }
  return { ...cmd, action };
}

/** `--since`: an ISO 8601 time with its zone, or Unix milliseconds. */
function parseSince(value: string): number {
  if (/^\d{1,15}$/.test(value)) return Number(value);
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isSafeInteger(ms) && ms >= 0) return ms;
  }
  usage(
    `Option --since takes an ISO 8601 time (2026-12-03T10:00:00Z) or Unix ms, not '${show(value)}'`,
    "ledger",
  );
}

/** `linkd help [SUBCOMMAND]`; `sub` is "help" when it was typed as a subcommand. */
function parseHelp(rest: readonly string[], sub?: "help"): Command {
  const [topic, more] = rest;
  if (topic === undefined) return { cmd: "help" };
  if (topic === "--help" || topic === "-h") return { cmd: "help", topic: "help" };
  if (topic.startsWith("-") && topic !== "-") {
    usage(`Unknown option '${show(topic.split("=")[0]!)}' for linkd help`, sub ?? "help");
  }
  if (!isSubcommand(topic)) notACommand(topic);
  if (more !== undefined) usage(`Unexpected argument '${show(more)}' for linkd help`, "help");
  return { cmd: "help", topic };
}

function parseSubcommand(sub: Subcommand, rest: readonly string[]): Command {
  const takes = optionsOf(sub);
  const seen = new Map<string, string | true>();
  const shortOf = new Map(
    Object.entries(takes).flatMap(([name, o]) => o.short === undefined ? [] : [[o.short, name]]),
  );
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === "--help" || arg === "-h") return { cmd: "help", topic: sub };
    let name: string;
    /** The option as typed, for messages: `-c` or `--config`. */
    let typed: string;
    /** The value written into the same argument (`--config=F`, `-cF`). */
    let inline: string | undefined;
    if (arg.startsWith("-") && !arg.startsWith("--") && arg !== "-") {
      const letter = arg.slice(1, 2);
      const long = shortOf.get(letter);
      if (long === undefined) usage(`Unknown option '-${show(letter)}' for linkd ${sub}`, sub);
      name = long;
      typed = `-${letter}`;
      if (arg.length > 2) {
        // `-c=F` would read as the path "=F"; getopt agrees, people do not.
        if (arg[2] === "=") {
          usage(`Option -${letter} takes its value as -${letter} FILE or --${long}=FILE`, sub);
        }
        inline = arg.slice(2);
      }
    } else if (!arg.startsWith("--") || arg === "--") {
      usage(`Unexpected argument '${show(arg)}' for linkd ${sub}`, sub);
    } else {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      typed = `--${name}`;
      if (eq >= 0) inline = arg.slice(eq + 1);
    }
    const spec = Object.hasOwn(takes, name) ? takes[name] : undefined;
    if (spec === undefined) usage(`Unknown option '--${show(name)}' for linkd ${sub}`, sub);
    if (seen.has(name)) usage(`Option --${name} is given twice`, sub);
    if (spec.value === undefined) {
      if (inline !== undefined) usage(`Option ${typed} takes no value`, sub);
      seen.set(name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = rest[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        value = next;
        i++;
      }
    }
    // An empty serial, product id or client id is bad input data (exit 65, from the
    // provisioning checks), not a bad command line: it is passed on as given.
    if (value === undefined || (value === "" && !spec.emptyIsData)) {
      usage(`Option ${typed} needs a value`, sub);
    }
    seen.set(name, value);
  }
  for (const [name, o] of Object.entries(takes)) {
    if (o.required && !seen.has(name)) usage(`Missing --${name} for linkd ${sub}`, sub);
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
    case "version":
      return { cmd: "version" };
    case "help":
      return { cmd: "help" }; // parsed by parseHelp; kept for the switch to be whole
    case "ledger": {
      const since = str("since");
      return {
        cmd: "ledger",
        action: "export", // parseLedger sets the action typed
        ledger: str("ledger")!,
        ...(since === undefined ? {} : { since: parseSince(since) }),
      };
    }
    case "provision":
    case "repair": {
      const lineKey = str("line-key");
      const recordOut = str("record-out");
      const ledger = str("ledger");
      const station = str("station");
      if ((ledger === undefined) !== (station === undefined)) {
        usage(
          ledger === undefined
            ? "Option --station needs --ledger"
            : "Option --ledger needs --station",
          sub,
        );
      }
      return {
        cmd: sub,
        ...withConfig,
        serial: str("serial")!,
        productId: str("product-id")!,
        clientId: str("client-id")!,
        ...(lineKey === undefined ? {} : { lineKey }),
        ...(recordOut === undefined ? {} : { recordOut }),
        ...(ledger === undefined ? {} : { ledger, station: station! }),
      };
    }
  }
}
