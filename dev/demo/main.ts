/**
 * `deno task demo`: the speaker's whole account link on this machine, with no broker and no
 * Amazon account.
 *
 * It starts the local authorization server and an in-process MQTT broker (aedes), provisions a
 * demo device under target/demo (emulated NOR flash and OTP files), runs the linkd daemon, and
 * a sample audio-pipeline subscriber prints what arrives on the bus. The code shows in the
 * terminal as the speaker's segment display and screen would show it, with the URL of the local
 * verification page: open it and approve, or pass `--approve` to approve by itself. Once the
 * token arrives the demo stops; run it again and the device boots from its sealed flash
 * without pairing. `--fresh` starts over with a blank device; `--broker mqtt://host:port` uses
 * a running MQTT 5 broker instead of the embedded one. `--stay` keeps the linked speaker (daemon,
 * broker and authorization server) running after the token until SIGINT or SIGTERM, and prints
 * how to reach it, so an audio engineer can try commands against it (examples/audio_client.py).
 *
 * The speaker asks for `alexa:all` and the Amazon Music scope `music::library:read`, which the
 * demo's security profile is not enabled for (Amazon's closed beta): the server refuses it and
 * linkd links with `alexa:all` and reports the refusal. `--refusal-style` picks how the refusal
 * comes: `json` (invalid_scope, the default), `html` (Amazon's error page "400 Bad Request - An
 * unknown scope was requested", as its browser flow answers) or `text`. See USAGE.
 */
import mqtt from "mqtt";
import nacl from "tweetnacl";
import { startAuthServer } from "../authserver/server.ts";
import { toHex } from "../../src/bytes.ts";
import { decodeCbor } from "../../src/cbor.ts";
import { startEmbeddedBroker } from "../broker/embedded.ts";
import { main } from "../../src/cli/main.ts";
import { loadConfig } from "../../src/config.ts";
import { runDaemon } from "../../src/daemon/run.ts";

const root = new URL("../../", import.meta.url).pathname;
/** `LINKD_DEMO_DIR` moves the demo device elsewhere (the tests use a temporary folder). */
const dir = Deno.env.get("LINKD_DEMO_DIR") ?? `${root}target/demo`;
/** The folder as a person would type it: relative to the project when it lies inside. */
const shownDir = dir.startsWith(root) ? dir.slice(root.length) : dir;
const configPath = `${dir}/linkd.json`;
const CLIENT = "amzn1.application-oa2-client.linkd-demo";
/** The scope the demo's security profile is not enabled for. */
const MUSIC = "music::library:read";
const out = (s: string) => console.log(s);

const USAGE = `demo: the speaker's whole account link on this machine

Usage:
  deno task demo [--approve] [--fresh] [--stay] [--broker mqtt://host:port]
                 [--refusal-style json|html|text]

  --approve            approve the code by itself, as a person at the verification page would
  --fresh              start over with a blank device (else it boots from its sealed flash)
  --stay               keep the linked speaker running after the token (until Ctrl-C or
                       SIGTERM) and print how to reach it, to try commands against it
  --broker URL         use a running MQTT 5 broker instead of the embedded one (the
                       embedded one speaks MQTT 3.1.1: commands are not answered there)
  --refusal-style S    how the server refuses the speaker's ${MUSIC} scope:
                       json (default, invalid_scope), html (Amazon's error page "400 Bad
                       Request - An unknown scope was requested"), text (that line as
                       text/plain); linkd links with alexa:all either way and reports it
`;

type RefusalStyle = "json" | "html" | "text";
interface DemoOptions {
  approve: boolean;
  fresh: boolean;
  stay: boolean;
  brokerUrl: string | undefined;
  refusalStyle: RefusalStyle;
}

/** Reads the demo's flags; a mistake is one line on stderr and exit 64. */
function parseDemoArgs(args: string[]): DemoOptions {
  const o: DemoOptions = {
    approve: false,
    fresh: false,
    stay: false,
    brokerUrl: undefined,
    refusalStyle: "json",
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined || v === "" || v.startsWith("--")) {
        throw new Error(`Missing value for ${flag}`);
      }
      return v;
    };
    const noValue = () => {
      if (eq > 0) throw new Error(`${flag} takes no value`);
    };
    switch (flag) {
      case "--approve":
        noValue();
        o.approve = true;
        break;
      case "--fresh":
        noValue();
        o.fresh = true;
        break;
      case "--stay":
        noValue();
        o.stay = true;
        break;
      case "--broker":
        o.brokerUrl = value();
        break;
      case "--refusal-style": {
        const v = value();
        if (v !== "json" && v !== "html" && v !== "text") {
          throw new Error(
            `Cannot parse --refusal-style: expected json, html or text, got ${JSON.stringify(v)}`,
          );
        }
        o.refusalStyle = v;
        break;
      }
      default:
        throw new Error(`Unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return o;
}

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  out(USAGE);
  Deno.exit(0);
}
let options: DemoOptions;
try {
  options = parseDemoArgs(Deno.args);
} catch (e) {
  console.error(`demo: ${(e as Error).message} (see --help)`);
  Deno.exit(64);
}
const { approve, brokerUrl, refusalStyle, stay } = options;

if (options.fresh) {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
Deno.mkdirSync(dir, { recursive: true });

// The local authorization server: this client may link alexa:all; the music scope is refused
// exactly as Amazon refuses a security profile not enabled for it (as JSON, or Amazon's page).
const auth = startAuthServer({
  port: 0,
  clients: [{
    clientId: CLIENT,
    name: "linkd demo speaker",
    enabledScopes: ["alexa:all"],
    interval: 2,
    refusalStyle,
  }],
});
const embedded = brokerUrl ? null : await startEmbeddedBroker();
const broker = brokerUrl
  ? { url: brokerUrl, protocolVersion: 5 as const }
  : { url: embedded!.url, protocolVersion: embedded!.protocolVersion };

Deno.writeTextFileSync(
  configPath,
  JSON.stringify(
    {
      flash: { path: "flash.img" },
      keys: { otpPath: "otp.bin" },
      auth: {
        dialect: "lwa",
        codepairUrl: auth.lwa.codepairUrl,
        tokenUrl: auth.lwa.tokenUrl,
        scopes: ["alexa:all", MUSIC],
        fallbackScopes: ["alexa:all"],
      },
      bus: { url: broker.url, username: "linkd", passwordFile: "bus.pass", prefix: "linkd" },
      display: { outputs: ["voice", "segment", "screen", "terminal"], lang: "en-US" },
    },
    null,
    2,
  ) + "\n",
);
Deno.writeTextFileSync(`${dir}/bus.pass`, "");
try {
  Deno.statSync(`${dir}/line.key`);
} catch {
  Deno.writeTextFileSync(`${dir}/line.key`, toHex(nacl.randomBytes(32)) + "\n", { mode: 0o600 });
}

out(
  `linkd demo: device files in ${shownDir}, broker ${broker.url}${embedded ? " (embedded)" : ""}`,
);
out(`authorization server ${auth.url} (verification page ${auth.verificationUrl})`);
const refusal = {
  json: "as JSON invalid_scope",
  html: `with Amazon's HTML error page "400 Bad Request - An unknown scope was requested"`,
  text: `as text/plain "400 Bad Request - An unknown scope was requested"`,
}[refusalStyle];
out(`the server refuses ${MUSIC} ${refusal} (--refusal-style ${refusalStyle})\n`);

// The factory line, once.
const serial = `DEMO-${toHex(nacl.randomBytes(3)).toUpperCase()}`;
let statusJson = "{}";
await main(["status", "--config", configPath, "--json"], {
  ...consoleIo(),
  out: (t) => (statusJson = t),
});
if (!JSON.parse(statusJson).provisioned) {
  out("$ linkd provision (the factory line)");
  const code = await main([
    "provision",
    "--config",
    configPath,
    "--serial",
    serial,
    "--product-id",
    "demo_speaker",
    "--client-id",
    CLIENT,
    "--line-key",
    `${dir}/line.key`,
    "--record-out",
    `${dir}/identity-${serial}.cbor`,
  ]);
  if (code !== 0) Deno.exit(code);
} else out("The device is provisioned already: it boots from its sealed flash.");

// The audio pipeline's side: a subscriber to the bus.
const sub = mqtt.connect(broker.url, {
  protocolVersion: broker.protocolVersion,
  clientId: "demo-audio",
});
const stop = new AbortController();
let gotToken = false;
let damaged = false;
sub.on("message", (topic: string, payload: Uint8Array) => {
  if (payload.length === 0) return;
  const v = decodeCbor(payload, topic) as Record<string, unknown>;
  if (topic === "linkd/state") {
    const error = (v.error as { code?: string } | undefined)?.code;
    out(`[audio] state: ${v.state}${error ? ` (${error})` : ""}`);
    if (error === "store_damaged") {
      // The daemon writes nothing to a damaged device and waits for the line's repair.
      damaged = true;
      setTimeout(() => stop.abort(), 300);
    }
  }
  if (topic === "linkd/say") out(`[audio] would say: "${v.text}"`);
  if (topic === "linkd/capabilities") out(`[audio] capabilities: ${JSON.stringify(v)}`);
  if (topic === "linkd/token") {
    const t = String(v.access_token);
    out(
      `[audio] token received: ${
        t.slice(0, 12)
      }… (${t.length} chars, expires in ${v.expires_in} s)`,
    );
    if (!gotToken && stay) setTimeout(() => out(stayBanner()), 300);
    gotToken = true;
    if (!stay) setTimeout(() => stop.abort(), 300);
  }
});
await new Promise<void>((resolve) => sub.on("connect", () => resolve()));
await sub.subscribeAsync("linkd/#", { qos: 1 });

// The code on show (linkd/pairing): approved a moment later with --approve, as a person at
// the verification page would; otherwise the person opens the page.
sub.on("message", (topic: string, payload: Uint8Array) => {
  if (topic !== "linkd/pairing" || payload.length === 0) return;
  const code = String((decodeCbor(payload, topic) as { user_code: unknown }).user_code);
  if (!approve) {
    out(`Open ${auth.verificationUrl} in a browser and enter ${code} (Ctrl-C to stop).`);
    return;
  }
  setTimeout(() => {
    if (auth.state.approve(code)) out(`[demo] approved ${code} at the verification page`);
  }, 1500);
});
const onSignal = () => stop.abort();
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

const code = await runDaemon({
  config: loadConfig(configPath),
  signal: stop.signal,
  log: (line) => console.error(line),
  terminal: (text) => out(text),
  broker,
});
Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);
await sub.endAsync();
await embedded?.close();
await auth.close();
out(
  gotToken && stay
    ? "\nStopped. Run `deno task demo` again: the speaker boots from its sealed flash without pairing."
    : gotToken
    ? "\nLinked. Run `deno task demo` again: the speaker boots from its sealed flash without pairing."
    : damaged
    ? "\nThe demo device's flash is damaged (`deno task linkd status --config target/demo/linkd.json`" +
      " says what and how to repair it); `deno task demo --fresh` starts over with a blank device."
    : "\nStopped before a token arrived.",
);
Deno.exit(damaged ? 1 : code);

/** With --stay, once linked: where the speaker is and how to talk to it (CONTRACT.md section 4). */
function stayBanner(): string {
  const at = new URL(broker.url);
  const lines = [
    "",
    "The speaker stays linked (--stay); Ctrl-C or SIGTERM stops it.",
    `  broker       ${broker.url}${embedded ? " (embedded, MQTT 3.1.1)" : " (MQTT 5)"}`,
    "  topics       linkd/# (state, pairing, token, capabilities, say, segment, display)",
    "  commands     linkd/cmd/<name> (pair, logout, token, refresh), CBOR maps; the reply goes",
    "               to the MQTT 5 response topic, under linkd/reply/<user>/...",
  ];
  if (embedded) {
    lines.push(
      "               The embedded broker speaks MQTT 3.1.1 (no response topic): commands are",
      "               carried out but not answered. For replies, run mosquitto and pass",
      "               --broker mqtt://127.0.0.1:1883 to the demo.",
    );
  }
  lines.push(
    `  try          python3 examples/audio_client.py --url ${broker.url} --prefix linkd --refresh`,
    `               mosquitto_sub -h ${at.hostname} -p ${at.port} -V ${
      embedded ? "mqttv311" : "5"
    } -t 'linkd/#' -v (payloads are CBOR)`,
  );
  return lines.join("\n");
}

function consoleIo() {
  return {
    out: (t: string) => console.log(t),
    err: (t: string) => console.error(t),
    env: (n: string) => Deno.env.get(n),
    now: () => Date.now(),
    effects: { random: (n: number) => nacl.randomBytes(n) },
  };
}
