import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, Exit, LinkdError } from "../errors.ts";
import { helpText, parseArgs, type Subcommand, USAGE_TEXT } from "./args.ts";

const SUBCOMMANDS: readonly Subcommand[] = [
  "run",
  "status",
  "provision",
  "repair",
  "logout",
  "factory-reset",
  "ledger",
  "help",
  "version",
];

/**
 * Expects a one-line Code.USAGE error that points, as git does, to the help of the subcommand
 * typed (`see 'linkd status --help'`), or to `linkd --help` without one, or to `see`; returns
 * the message.
 */
function usageError(argv: string[], mentions?: string, see?: string): string {
  const sub = SUBCOMMANDS.find((s) => s === argv[0]);
  const help = see ?? (sub === undefined ? "linkd --help" : `linkd ${sub} --help`);
  try {
    parseArgs(argv);
  } catch (e) {
    assert.instance(e, LinkdError);
    const err = e as LinkdError;
    assert.is(err.code, Code.USAGE, err.message);
    assert.is(err.exitCode, Exit.USAGE);
    assert.not.match(err.message, "\n");
    assert.ok(err.message.endsWith(`; see '${help}'`), `expected see '${help}': ${err.message}`);
    if (mentions !== undefined) {
      assert.ok(err.message.includes(mentions), `expected ${mentions} in: ${err.message}`);
    }
    return err.message;
  }
  assert.unreachable(`expected a usage error for ${JSON.stringify(argv)}`);
  return "";
}

const PROVISION = ["provision", "--serial", "SN1", "--product-id", "PID", "--client-id", "CID"];

test("parseArgs() gives help for --help, -h and help; the usage (exit 64) for no arguments", () => {
  assert.equal(parseArgs([]), { cmd: "usage" });
  assert.equal(parseArgs(["--help"]), { cmd: "help" });
  assert.equal(parseArgs(["-h"]), { cmd: "help" });
  assert.equal(parseArgs(["help"]), { cmd: "help" });
});

test("parseArgs() gives a subcommand's help for SUBCOMMAND --help or -h, and help SUBCOMMAND", () => {
  for (const sub of SUBCOMMANDS) {
    assert.equal(parseArgs([sub, "--help"]), { cmd: "help", topic: sub }, sub);
    assert.equal(parseArgs([sub, "-h"]), { cmd: "help", topic: sub }, sub);
    assert.equal(parseArgs(["help", sub]), { cmd: "help", topic: sub }, sub);
    assert.equal(parseArgs(["--help", sub]), { cmd: "help", topic: sub }, sub);
  }
  // After other options, and before a missing required one: help wins, as with git.
  assert.equal(parseArgs(["provision", "--serial", "S", "-h"]), {
    cmd: "help",
    topic: "provision",
  });
  assert.equal(parseArgs(["status", "-c", "x", "--help"]), { cmd: "help", topic: "status" });
  usageError(["help", "frob"], "'frob' is not a linkd command", "linkd --help");
  usageError(["help", "status", "run"], "'run'");
  usageError(["help", "--json"], "--json");
  usageError(["--help", "frob"], "'frob'", "linkd --help");
});

test("parseArgs() gives version for --version, -V and version, alone", () => {
  assert.equal(parseArgs(["--version"]), { cmd: "version" });
  assert.equal(parseArgs(["-V"]), { cmd: "version" });
  assert.equal(parseArgs(["version"]), { cmd: "version" });
  usageError(["--version", "run"], "--version");
  usageError(["--version", "--json"], "--version");
  usageError(["-V", "run"], "-V");
  usageError(["version", "--json"], "--json");
  usageError(["version", "run"], "'run'");
  usageError(["run", "--version"], "--version");
  usageError(["run", "-V"], "-V");
});

test("parseArgs() takes -c FILE and -cFILE for --config, in every subcommand that has it", () => {
  for (const cmd of ["run", "logout", "factory-reset"] as const) {
    assert.equal(parseArgs([cmd, "-c", "/etc/x.json"]), { cmd, config: "/etc/x.json" });
    assert.equal(parseArgs([cmd, "-c/etc/y.json"]), { cmd, config: "/etc/y.json" });
    assert.equal(parseArgs([cmd, "-c", "-"]), { cmd, config: "-" });
  }
  assert.equal(parseArgs(["status", "--json", "-c", "c.json"]), {
    cmd: "status",
    config: "c.json",
    json: true,
  });
  assert.equal(parseArgs([...PROVISION, "-c", "p.json"]), {
    cmd: "provision",
    config: "p.json",
    serial: "SN1",
    productId: "PID",
    clientId: "CID",
  });
  usageError(["run", "-c"], "-c needs a value");
  usageError(["run", "-c", ""], "-c needs a value");
  usageError(["run", "-c", "--json"], "-c needs a value");
  usageError(["run", "-c=/x.json"], "-c FILE");
  usageError(["run", "-c", "a", "--config", "b"], "--config is given twice");
  usageError(["run", "--config=a", "-cb"], "--config is given twice");
  usageError(["version", "-c", "x"], "'-c'");
  usageError(["-c", "x", "status"], "'-c' before the subcommand");
});

test("parseArgs() words its refusals as git does, naming what was typed", () => {
  assert.is(
    usageError(["frob"]),
    "'frob' is not a linkd command; see 'linkd --help'",
  );
  assert.is(
    usageError(["status", "--jsn"]),
    "Unknown option '--jsn' for linkd status; see 'linkd status --help'",
  );
  assert.is(
    usageError(["logout", "-f"]),
    "Unknown option '-f' for linkd logout; see 'linkd logout --help'",
  );
  assert.is(
    usageError(["status", "extra"]),
    "Unexpected argument 'extra' for linkd status; see 'linkd status --help'",
  );
});

test("parseArgs() parses run, logout and factory-reset with and without --config", () => {
  for (const cmd of ["run", "logout", "factory-reset"] as const) {
    assert.equal(parseArgs([cmd]), { cmd });
    assert.equal(parseArgs([cmd, "--config", "/etc/x.json"]), { cmd, config: "/etc/x.json" });
    assert.equal(parseArgs([cmd, "--config=/etc/y.json"]), { cmd, config: "/etc/y.json" });
    assert.not.ok("config" in parseArgs([cmd]));
  }
});

test("parseArgs() parses status with --json in any order", () => {
  assert.equal(parseArgs(["status"]), { cmd: "status", json: false });
  assert.equal(parseArgs(["status", "--json"]), { cmd: "status", json: true });
  assert.equal(parseArgs(["status", "--json", "--config", "c.json"]), {
    cmd: "status",
    config: "c.json",
    json: true,
  });
  assert.equal(parseArgs(["status", "--config=c.json", "--json"]), {
    cmd: "status",
    config: "c.json",
    json: true,
  });
});

test("parseArgs() parses provision with the required flags", () => {
  assert.equal(parseArgs(PROVISION), {
    cmd: "provision",
    serial: "SN1",
    productId: "PID",
    clientId: "CID",
  });
  const full = parseArgs([
    "provision",
    "--config=/c.json",
    "--client-id=amzn1.application-oa2-client.abc",
    "--serial",
    "-SN.2_x",
    "--product-id",
    "Speaker One",
    "--line-key",
    "line.key",
    "--record-out=rec.cbor",
  ]);
  assert.equal(full, {
    cmd: "provision",
    config: "/c.json",
    serial: "-SN.2_x",
    productId: "Speaker One",
    clientId: "amzn1.application-oa2-client.abc",
    lineKey: "line.key",
    recordOut: "rec.cbor",
  });
});

test("parseArgs() parses repair with the flags of provision; USAGE_TEXT says how a stuck device gets out", () => {
  const flags = ["--serial", "SN1", "--product-id", "PID", "--client-id", "CID"];
  assert.equal(parseArgs(["repair", ...flags, "--line-key", "k", "--record-out", "o"]), {
    cmd: "repair",
    serial: "SN1",
    productId: "PID",
    clientId: "CID",
    lineKey: "k",
    recordOut: "o",
  });
  usageError(["repair", "--serial", "SN1", "--product-id", "PID"], "--client-id");
  usageError(["repair", ...flags, "--json"], "--json");
  assert.match(
    USAGE_TEXT,
    /linkd repair --config FILE --serial SN --product-id PID --client-id CID/,
  );
  assert.match(USAGE_TEXT, /damaged or lost/);
});

test("parseArgs() keeps values as given, including = and odd characters", () => {
  const c = parseArgs(["provision", "--serial=a=b", "--product-id", "p!d", "--client-id", "c/d"]);
  assert.equal(c, { cmd: "provision", serial: "a=b", productId: "p!d", clientId: "c/d" });
  assert.equal(parseArgs(["run", "--config=--odd"]), { cmd: "run", config: "--odd" });
  assert.equal(parseArgs(["run", "--config", "-"]), { cmd: "run", config: "-" });
});

test("parseArgs() rejects an unknown subcommand", () => {
  usageError(["start"], "'start'");
  usageError(["Run"], "'Run'");
  usageError(["Help"], "'Help'");
  usageError(["versions"], "'versions'");
  usageError(["factory_reset"], "'factory_reset'");
});

test("parseArgs() rejects a flag before the subcommand", () => {
  usageError(["--config", "/c.json", "run"], "--config");
  usageError(["--config=/c.json", "run"], "--config");
  usageError(["-v"], "-v");
});

test("parseArgs() rejects unknown flags, naming them", () => {
  usageError(["run", "--json"], "--json");
  usageError(["run", "--conf", "x"], "--conf");
  usageError(["status", "--serial", "x"], "--serial");
  usageError(["logout", "--force"], "--force");
  usageError(["factory-reset", "-f"], "-f");
  usageError([...PROVISION, "--lineKey", "k"], "--lineKey");
  const msg = usageError(["run", "--token=secret-value"], "--token");
  assert.not.ok(msg.includes("secret-value"), msg);
});

test("parseArgs() rejects stray positional arguments", () => {
  usageError(["run", "/etc/linkd/linkd.json"], "/etc/linkd/linkd.json");
  usageError(["status", "--json", "extra"], "extra");
  usageError(["run", "--"], "--");
  usageError(["run", "-"], "-");
});

test("parseArgs() rejects a flag given twice", () => {
  usageError(["run", "--config", "a", "--config", "b"], "--config");
  usageError(["run", "--config=a", "--config=a"], "--config");
  usageError(["status", "--json", "--json"], "--json");
  usageError([...PROVISION, "--serial", "SN2"], "--serial");
});

test("parseArgs() rejects a missing value", () => {
  usageError(["run", "--config"], "--config");
  usageError(["run", "--config="], "--config");
  usageError(["run", "--config", ""], "--config");
  usageError(["provision", "--serial", "--product-id", "P", "--client-id", "C"], "--serial");
  usageError(["provision", "--serial", "S", "--product-id", "P", "--client-id"], "--client-id");
  usageError([...PROVISION, "--line-key"], "--line-key");
  usageError([...PROVISION, "--record-out="], "--record-out");
});

test("parseArgs() passes an empty serial, product id or client id on for the data checks", () => {
  const base = { cmd: "provision", serial: "SN1", productId: "PID", clientId: "CID" };
  assert.equal(
    parseArgs(["provision", "--serial", "", "--product-id", "PID", "--client-id", "CID"]),
    {
      ...base,
      serial: "",
    },
  );
  assert.equal(parseArgs(["provision", "--serial=", "--product-id=PID", "--client-id=CID"]), {
    ...base,
    serial: "",
  });
  assert.equal(parseArgs(["provision", "--serial", "SN1", "--product-id=", "--client-id", ""]), {
    ...base,
    productId: "",
    clientId: "",
  });
  // Still a usage error: the value is missing, not empty; and every other flag's empty value.
  usageError(["provision", "--serial", "--product-id", "P", "--client-id", "C"], "--serial");
  usageError([...PROVISION.slice(0, 5), "--client-id"], "--client-id");
  usageError([...PROVISION, "--line-key", ""], "--line-key");
  usageError([...PROVISION, "--line-key="], "--line-key");
  usageError(["provision", "--config=", ...PROVISION.slice(1)], "--config");
  usageError(["status", "--config", ""], "--config");
});

test("parseArgs() rejects a value on --json", () => {
  usageError(["status", "--json=true"], "--json");
});

test("parseArgs() rejects provision without each required flag", () => {
  usageError(["provision"], "--serial");
  usageError(["provision", "--product-id", "P", "--client-id", "C"], "--serial");
  usageError(["provision", "--serial", "S", "--client-id", "C"], "--product-id");
  usageError(["provision", "--serial", "S", "--product-id", "P"], "--client-id");
});

test("parseArgs() never echoes more than 60 characters of an argument", () => {
  const long = "z".repeat(500);
  for (const argv of [[long], ["run", long], ["run", `--${long}`], [`-${long}`]]) {
    const msg = usageError(argv);
    assert.ok(msg.length < 140, `message too long (${msg.length}): ${msg}`);
  }
  const msg = usageError(["run", "a\nb"]);
  assert.ok(msg.includes("a\\nb"), msg);
});

test("USAGE_TEXT lists the contract's command lines", () => {
  for (
    const line of [
      "linkd run --config FILE",
      "linkd status --config FILE [--json]",
      "linkd provision --config FILE --serial SN --product-id PID --client-id CID [--line-key FILE] [--record-out FILE]",
      "linkd logout --config FILE",
      "linkd factory-reset --config FILE",
      "linkd --version",
      "LINKD_CONFIG",
      "/etc/linkd/linkd.json",
    ]
  ) {
    assert.ok(USAGE_TEXT.includes(line), line);
  }
});

test("helpText() gives each subcommand's synopsis and one line per option with its default", () => {
  const lines = (sub: Subcommand) => helpText(sub).split("\n");
  const row = (sub: Subcommand, option: string) => {
    const found = lines(sub).filter((l) => new RegExp(`^  (-\\w, )? *${option}\\b`).test(l));
    assert.is(found.length, 1, `${sub}: one line for ${option}:\n${helpText(sub)}`);
    return found[0]!;
  };
  for (const sub of ["run", "status", "provision", "repair", "logout", "factory-reset"] as const) {
    assert.ok(lines(sub)[0]!.startsWith(`Usage: linkd ${sub} [-c FILE]`), helpText(sub));
    assert.match(
      row(sub, "--config"),
      /^ {2}-c, --config FILE +.*\$LINKD_CONFIG, then \/etc\/linkd\/linkd\.json/,
    );
    assert.match(row(sub, "--help"), /^ {2}-h, --help /);
  }
  assert.match(row("status", "--json"), /default: text/);
  assert.match(helpText("status"), /^Usage: linkd status \[-c FILE\] \[--json\]$/m);
  for (const sub of ["provision", "repair"] as const) {
    assert.match(
      helpText(sub),
      new RegExp(
        `^Usage: linkd ${sub} \\[-c FILE\\] --serial SN --product-id PID --client-id CID ` +
          "\\[--line-key FILE\\] \\[--record-out FILE\\]" +
          " \\[--ledger URL\\] \\[--station NAME\\]$",
        "m",
      ),
    );
    for (const o of ["--serial", "--product-id", "--client-id"]) {
      assert.match(row(sub, o), /\(required\)$/);
    }
    assert.match(row(sub, "--line-key"), /default: unsigned/);
    assert.match(row(sub, "--record-out"), /default: not written/);
  }
  assert.match(
    helpText("ledger"),
    /^Usage: linkd ledger export\|verify --ledger URL \[--since TIME\]$/m,
  );
  assert.match(helpText("help"), /^Usage: linkd help \[SUBCOMMAND\]$/m);
  assert.match(helpText("version"), /^Usage: linkd version$/m);
});

test("helpText() lists exactly the options the parser takes", () => {
  for (const sub of SUBCOMMANDS) {
    // `linkd ledger` takes its action before the options.
    const head = sub === "ledger" ? ["ledger", "export"] : [sub];
    const listed = [...helpText(sub).matchAll(/^ {2}(?:-\w, | {4})--([a-z-]+)/gm)].map((m) =>
      m[1]!
    );
    for (const name of listed) {
      if (name === "help") continue;
      // Accepted: whatever the parser says next, it is not that the option is unknown.
      let msg = "";
      try {
        parseArgs([...head, `--${name}`, "v"]);
      } catch (e) {
        msg = (e as Error).message;
      }
      assert.not.match(msg, "Unknown option", `${sub} --${name}`);
    }
    for (const name of ["json", "serial", "line-key", "config"]) {
      if (listed.includes(name)) continue;
      usageError([...head, `--${name}`, "v"], `Unknown option '--${name}'`);
    }
  }
});

test("USAGE_TEXT names help, version, -V and -c", () => {
  for (const s of ["linkd help [SUBCOMMAND]", "linkd -V", "version", "-c FILE", "--help"]) {
    assert.ok(USAGE_TEXT.includes(s), s);
  }
});

test("ledger: provision takes --ledger with --station; linkd ledger export|verify", () => {
  const PROVISION = ["provision", "--serial", "S", "--product-id", "P", "--client-id", "C"];
  assert.equal(parseArgs([...PROVISION, "--ledger", "sqlite:l.db", "--station", "st-1"]), {
    cmd: "provision",
    serial: "S",
    productId: "P",
    clientId: "C",
    ledger: "sqlite:l.db",
    station: "st-1",
  });
  usageError([...PROVISION, "--ledger", "sqlite:l.db"], "--station");
  usageError([...PROVISION, "--station", "st-1"], "--ledger");
  assert.equal(
    parseArgs(["repair", ...PROVISION.slice(1), "--ledger", "sqlite:l", "--station", "a"]),
    { cmd: "repair", serial: "S", productId: "P", clientId: "C", ledger: "sqlite:l", station: "a" },
  );
  assert.equal(parseArgs(["ledger", "export", "--ledger", "postgres://u@h/db"]), {
    cmd: "ledger",
    action: "export",
    ledger: "postgres://u@h/db",
  });
  assert.equal(
    parseArgs(["ledger", "export", "--ledger=sqlite:x", "--since", "2026-12-03T10:00:00Z"]),
    {
      cmd: "ledger",
      action: "export",
      ledger: "sqlite:x",
      since: Date.UTC(2026, 11, 3, 10),
    },
  );
  assert.equal(
    parseArgs(["ledger", "export", "--ledger=sqlite:x", "--since", "1700000000000"]).cmd,
    "ledger",
  );
  assert.equal(parseArgs(["ledger", "verify", "--ledger", "sqlite:x"]), {
    cmd: "ledger",
    action: "verify",
    ledger: "sqlite:x",
  });
  assert.equal(parseArgs(["ledger", "--help"]), { cmd: "help", topic: "ledger" });
  usageError(["ledger"], "export or verify");
  usageError(["ledger", "frob", "--ledger", "sqlite:x"], "frob");
  usageError(["ledger", "verify"], "--ledger");
  usageError(["ledger", "verify", "--ledger", "sqlite:x", "--since", "5"], "--since");
  usageError(["ledger", "export", "--ledger", "sqlite:x", "--since", "yesterday"], "--since");
});

test.run();
