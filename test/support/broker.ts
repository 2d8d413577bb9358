/**
 * Debian's real mosquitto for tests: a temporary configuration with one listener on 127.0.0.1
 * (a free port unless one is given), an optional ACL and password file, started with
 * `mosquitto -c FILE` and stopped with SIGTERM. When it fails to start, its log is printed.
 */

export const MOSQUITTO = "/usr/sbin/mosquitto";
export const MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd";

export interface StartMosquittoOptions {
  /** Extra configuration text, appended after the listener (e.g. `allow_anonymous false`). */
  config?: string;
  /** ACL file text; written to a temporary file and named by `acl_file`. */
  acl?: string;
  /** user → password, hashed into a password file with `mosquitto_passwd -b`. */
  users?: Record<string, string>;
  /** Listen on this port (to restart a broker where it was); a free one when absent. */
  port?: number;
  /** Anonymous clients: defaults to false when `users` is given, true otherwise. */
  allowAnonymous?: boolean;
}

export interface Mosquitto {
  port: number;
  url: string;
  /** The broker's log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** The arguments that point mosquitto_sub or mosquitto_pub at `broker` over MQTT 5, then `more`. */
export function clientArgs(broker: Mosquitto, ...more: string[]): string[] {
  return ["-h", "127.0.0.1", "-p", String(broker.port), "-V", "5", ...more];
}

/** A port that was free a moment ago: bind port 0, read the port, close. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** True when Debian's mosquitto is installed. */
export function haveMosquitto(): boolean {
  try {
    return Deno.statSync(MOSQUITTO).isFile;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`Cannot run ${cmd}: ${err.trim()}`);
  }
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

export async function startMosquitto(options: StartMosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await Deno.makeTempDir({ prefix: "linkd-mosquitto-" });
  const port = options.port ?? freePort();
  const logFile = `${dir}/mosquitto.log`;
  const lines = [
    `listener ${port} 127.0.0.1`,
    "persistence false",
    `log_dest file ${logFile}`,
    "log_type all",
    "connection_messages true",
  ];
  // Run as root, mosquitto 2 drops to the `mosquitto` user, which cannot read our 0600 files.
  if (Deno.uid() === 0) lines.push("user root");
  const anonymous = options.allowAnonymous ?? options.users === undefined;
  if (!/^\s*allow_anonymous\b/m.test(options.config ?? "")) {
    lines.push(`allow_anonymous ${anonymous}`);
  }
  if (options.users) {
    const pw = `${dir}/passwd`;
    await Deno.writeTextFile(pw, "", { mode: 0o600 });
    for (const [user, pass] of Object.entries(options.users)) {
      await run(MOSQUITTO_PASSWD, ["-b", pw, user, pass]);
    }
    lines.push(`password_file ${pw}`);
  }
  if (options.acl !== undefined) {
    const acl = `${dir}/acl`;
    await Deno.writeTextFile(acl, options.acl, { mode: 0o600 });
    lines.push(`acl_file ${acl}`);
  }
  if (options.config) lines.push(options.config);
  const conf = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(conf, lines.join("\n") + "\n", { mode: 0o600 });

  const child = new Deno.Command(MOSQUITTO, {
    args: ["-c", conf],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let exited: Deno.CommandOutput | null = null;
  output.then((o) => (exited = o), () => {});

  const readLog = async () => {
    try {
      return await Deno.readTextFile(logFile);
    } catch {
      return "";
    }
  };

  const deadline = performance.now() + 10_000;
  for (;;) {
    if (exited !== null || performance.now() > deadline) {
      const o = exited as Deno.CommandOutput | null;
      if (o === null) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      const done = o ?? await output;
      const text = [
        new TextDecoder().decode(done.stdout),
        new TextDecoder().decode(done.stderr),
        await readLog(),
      ].join("\n").trim();
      console.error(`mosquitto did not start on port ${port}:\n${text}`);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`Cannot start mosquitto on 127.0.0.1:${port}`);
    }
    if (await canConnect(port)) break;
    await new Promise((r) => setTimeout(r, 25));
  }

  let stopped = false;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    log: readLog,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await output;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
