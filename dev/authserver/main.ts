/**
 * `deno task authserver`: the local authorization server as a program, for the demo and for
 * trying linkd by hand. It prints its URLs and runs until SIGINT or SIGTERM.
 *
 *   deno task authserver [--port N] [--client ID[:scope,scope...]]... [--web-client ID[:scopes]]...
 *                        [--interval S] [--code-lifetime S] [--token-lifetime S]
 *                        [--refusal-style json|html|text] [--refresh-refusal ERROR]
 *                        [--approve] [--json]
 *
 * Without --client it serves one device client, DEFAULT_CLIENT_ID, enabled for `alexa:all` only
 * (so music scopes are refused as Amazon refuses them to a profile not in the beta).
 * A mistake on the command line (an unknown flag, a bad value) is one line on stderr, exit 64,
 * worded as git words it: `authserver: Unknown option '--prot'; see 'deno task authserver --help'`.
 */

import { REFRESH_REFUSALS, type RefreshRefusal, type RefusalStyle } from "./clients.ts";
import { type ClientConfig, startAuthServer } from "./server.ts";

export const DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.linkd-demo";

export const USAGE =
  `authserver: the local authorization server (LWA code-based linking and RFC 8628)

Usage:
  deno task authserver [--port N] [--client ID[:scope,scope...]]... [--web-client ID[:scope,...]]...
                       [--interval S] [--code-lifetime S] [--token-lifetime S]
                       [--refusal-style json|html|text] [--refresh-refusal ERROR]
                       [--approve] [--json]

  --port N            port on 127.0.0.1 (default 0: any free port)
  --client ID:SCOPES  a device client and the scopes enabled for it (default scope alexa:all);
                      repeat for more clients; default ${DEFAULT_CLIENT_ID}
  --web-client ID     a web-type client: its refresh without client_secret is refused, as LWA does
  --interval S        seconds between polls (default 5)
  --code-lifetime S   seconds a device code lives (default 600)
  --token-lifetime S  seconds an access token lives (default 3600)
  --refusal-style S   how every client's request for a scope it is not enabled for is refused,
                      always HTTP 400: json (default, invalid_scope), html (Amazon's error page
                      "400 Bad Request - An unknown scope was requested"), text (that line)
  --refresh-refusal E every refresh of every client is refused with OAuth error E, as for a
                      security profile not set up for devices; E is one of
                      ${Object.keys(REFRESH_REFUSALS).join(", ")}
  --approve           approve every new code at once (no browser needed)
  --json              print the URLs as one JSON line instead of text

GET /user/profile answers a bearer access token as api.amazon.com/user/profile does.
The admin API (JSON, loopback only) is under /_admin/: clients, pending, approve, deny, forget,
user, revoke, scope, fault, stats, introspect, auto-approve.
`;

export interface Options {
  port: number;
  clients: ClientConfig[];
  approve: boolean;
  json: boolean;
  help: boolean;
}

/** Shows a piece of the command line in a message: one line (escaped), at most 60 characters. */
function quote(s: string): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length <= 60 ? t : `${t.slice(0, 57)}...`;
}

/** Parses the command line; throws an Error with a one-line message for a mistake. */
export function parseArgs(args: string[]): Options {
  const out: Options = { port: 0, clients: [], approve: false, json: false, help: false };
  let interval: number | undefined;
  let codeLifetime: number | undefined;
  let tokenLifetime: number | undefined;
  let refusalStyle: RefusalStyle | undefined;
  let refreshRefusal: RefreshRefusal | undefined;
  const oneOf = <T extends string>(flag: string, v: string, allowed: readonly T[]): T => {
    if (!(allowed as readonly string[]).includes(v)) {
      throw new Error(
        `Cannot parse ${flag}: expected ${allowed.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    return v as T;
  };
  const seconds = (flag: string, v: string) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0)) {
      throw new Error(`Cannot parse ${flag}: expected seconds, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0 && arg.startsWith("--")) return arg.slice(eq + 1);
      const v = args[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`Missing value for ${flag}`);
      return v;
    };
    /** A flag without a value: `--approve=no` is a mistake, not a yes. */
    const noValue = () => {
      if (eq > 0 && arg.startsWith("--")) throw new Error(`${flag} takes no value`);
    };
    switch (flag) {
      case "--port": {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) {
          throw new Error(`Cannot parse --port: got ${JSON.stringify(v)}`);
        }
        out.port = n;
        break;
      }
      case "--client":
      case "--web-client": {
        const v = value();
        const colon = v.indexOf(":");
        const clientId = colon < 0 ? v : v.slice(0, colon);
        if (clientId === "") throw new Error(`Cannot parse ${flag}: empty client id`);
        const client: ClientConfig = { clientId };
        if (colon >= 0) {
          const scopes = v.slice(colon + 1).split(",").map((s) => s.trim()).filter(Boolean);
          if (scopes.length === 0) throw new Error(`Cannot parse ${flag}: no scopes after ":"`);
          client.enabledScopes = scopes;
        }
        if (flag === "--web-client") client.type = "web";
        out.clients.push(client);
        break;
      }
      case "--interval":
        interval = seconds(flag, value());
        break;
      case "--code-lifetime":
        codeLifetime = seconds(flag, value());
        break;
      case "--token-lifetime":
        tokenLifetime = seconds(flag, value());
        break;
      case "--refusal-style":
        refusalStyle = oneOf<RefusalStyle>(flag, value(), ["json", "html", "text"]);
        break;
      case "--refresh-refusal":
        refreshRefusal = oneOf(flag, value(), Object.keys(REFRESH_REFUSALS) as RefreshRefusal[]);
        break;
      case "--approve":
        noValue();
        out.approve = true;
        break;
      case "--json":
        noValue();
        out.json = true;
        break;
      case "--help":
      case "-h":
        noValue();
        out.help = true;
        break;
      default:
        throw new Error(
          arg.startsWith("-")
            ? `Unknown option '${quote(flag)}'`
            : `Unexpected argument '${quote(arg)}'`,
        );
    }
  }
  if (out.clients.length === 0) out.clients.push({ clientId: DEFAULT_CLIENT_ID });
  for (const c of out.clients) {
    if (interval !== undefined) c.interval = interval;
    if (codeLifetime !== undefined) c.codeLifetime = codeLifetime;
    if (tokenLifetime !== undefined) c.tokenLifetime = tokenLifetime;
    if (refusalStyle !== undefined) c.refusalStyle = refusalStyle;
    if (refreshRefusal !== undefined) c.refreshRefusal = refreshRefusal;
  }
  return out;
}

async function main(args: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(args);
  } catch (e) {
    console.error(`authserver: ${(e as Error).message}; see 'deno task authserver --help'`);
    return 64;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  let server;
  try {
    server = startAuthServer({
      port: options.port,
      clients: options.clients,
      autoApprove: options.approve,
    });
  } catch (e) {
    console.error(
      `authserver: Cannot listen on 127.0.0.1:${options.port}: ${(e as Error).message}`,
    );
    return 69;
  }
  const info = {
    url: server.url,
    lwa: server.lwa,
    rfc8628: server.rfc8628,
    verificationUrl: server.verificationUrl,
    adminUrl: server.adminUrl,
    profileUrl: server.profileUrl,
    clients: server.state.clients().map((c) => ({
      clientId: c.clientId,
      type: c.type,
      enabledScopes: c.enabledScopes,
      refusalStyle: c.refusalStyle,
      refreshRefusal: c.refreshRefusal,
    })),
    autoApprove: options.approve,
  };
  if (options.json) {
    console.log(JSON.stringify(info));
  } else {
    console.log(`authserver listening on ${server.url}`);
    console.log(`  LWA code pair:        ${server.lwa.codepairUrl}`);
    console.log(`  LWA token:            ${server.lwa.tokenUrl}`);
    console.log(`  RFC 8628 device auth: ${server.rfc8628.codepairUrl}`);
    console.log(`  RFC 8628 token:       ${server.rfc8628.tokenUrl}`);
    console.log(`  verification page:    ${server.verificationUrl}`);
    console.log(`  user profile:         ${server.profileUrl}`);
    console.log(`  admin API:            ${server.adminUrl}/`);
    for (const c of info.clients) {
      const how = [
        c.type,
        ...(c.refusalStyle === "json" ? [] : [`${c.refusalStyle} scope refusals`]),
        ...(c.refreshRefusal === null ? [] : [`refreshes refused: ${c.refreshRefusal}`]),
      ];
      console.log(`  client ${c.clientId} (${how.join(", ")}): ${c.enabledScopes.join(" ")}`);
    }
    if (options.approve) console.log("  every new code is approved at once (--approve)");
  }
  server.state.onApprove = (p) => {
    // The user code is shown to people anyway; tokens are never printed.
    if (!options.json) {
      console.log(`approved ${p.userCode} for ${p.clientId}: ${p.scopes.join(" ")}`);
    }
  };

  await new Promise<void>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, resolve);
  });
  await server.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
