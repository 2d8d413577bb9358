/**
 * Debian's real PostgreSQL 15 for tests, as broker.ts starts mosquitto: a cluster in a temporary
 * folder, listening on 127.0.0.1 at a free port (its unix socket in that folder too), fsync off,
 * with SCRAM-SHA-256 for every TCP client unless `hba` lines say otherwise, and TLS when given
 * a certificate.
 *
 * Start is fast because `initdb` runs once per superuser and password: the cluster it makes is
 * kept as a template in the temporary directory (made under a unique name, then renamed, so
 * concurrent test processes never see half of one) and copied for each start. PostgreSQL refuses
 * to run as root, so as root every command runs through `runuser -u postgres --` and the folder
 * belongs to postgres. Each folder records the test process that owns it: a start first stops and
 * removes the clusters of test processes that died without `stop()` (a runner's timeout).
 */

export const PG_BIN = "/usr/lib/postgresql/15/bin";
const RUNUSER = "/usr/sbin/runuser";
const PREFIX = "linkd-postgres-";

export interface StartPostgresOptions {
  /** The superuser's name: default `linkd`. */
  user?: string;
  /** The superuser's password: default `linkd-Pg-Secr3t-4d1f`. */
  password?: string;
  /** pg_hba.conf lines put before the SCRAM ones (first match wins), e.g. for md5 or trust. */
  hba?: string[];
  /** PEM certificate and key: the server then also takes TLS (`ssl=on`). */
  tls?: { cert: string; key: string };
}

export interface Postgres {
  port: number;
  user: string;
  password: string;
  /** `postgres://user:password@127.0.0.1:port/postgres`, sslmode=disable. */
  url: string;
  /** The folder holding the cluster (`data/`) and its socket. */
  dir: string;
  /** The server's log so far. */
  log(): Promise<string>;
  /** Runs SQL with psql over the unix socket as the superuser; resolves with its output. */
  psql(sql: string): Promise<string>;
  /** Stops the server (immediate shutdown) and removes the folder. Idempotent. */
  stop(): Promise<void>;
}

/** True when Debian's PostgreSQL 15 server is installed. */
export function havePostgres(): boolean {
  try {
    return Deno.statSync(`${PG_BIN}/postgres`).isFile && Deno.statSync(`${PG_BIN}/initdb`).isFile;
  } catch {
    return false;
  }
}

const asRoot = Deno.uid() === 0;

function command(bin: string, args: string[], env?: Record<string, string>): Deno.Command {
  const [cmd, argv] = asRoot ? [RUNUSER, ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  return new Deno.Command(cmd, {
    args: argv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(env ? { env } : {}),
  });
}

async function run(bin: string, args: string[], env?: Record<string, string>): Promise<string> {
  const out = await command(bin, args, env).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`Cannot run ${bin}: ${text.trim()}`);
  return text;
}

async function own(path: string): Promise<void> {
  if (!asRoot) return;
  const out = await new Deno.Command("chown", { args: ["-R", "postgres:postgres", path] }).output();
  if (!out.success) throw new Error(`Cannot chown ${path} to postgres`);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

/** The postmaster's pid and status (line 8 of postmaster.pid: "ready", "starting", ...). */
async function postmaster(data: string): Promise<{ pid: number; status: string } | null> {
  try {
    const lines = (await Deno.readTextFile(`${data}/postmaster.pid`)).split("\n");
    const pid = Number(lines[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? { pid, status: (lines[7] ?? "").trim() } : null;
  } catch {
    return null;
  }
}

/** Immediate shutdown of the postmaster in `data` (SIGQUIT), then SIGKILL after 5 s. */
async function shutdown(data: string): Promise<void> {
  const pm = await postmaster(data);
  if (pm === null || !alive(pm.pid)) return;
  try {
    Deno.kill(pm.pid, "SIGQUIT");
  } catch { /* gone */ }
  const deadline = performance.now() + 5000;
  while (alive(pm.pid) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    if (alive(pm.pid)) Deno.kill(pm.pid, "SIGKILL");
  } catch { /* gone */ }
}

/** Stops and removes the clusters of test processes that are gone. */
async function reapLeftovers(tmp: string): Promise<void> {
  for await (const e of Deno.readDir(tmp)) {
    if (!e.isDirectory || !e.name.startsWith(PREFIX) || e.name.startsWith(`${PREFIX}template`)) {
      continue;
    }
    const dir = `${tmp}/${e.name}`;
    let owner: number;
    try {
      owner = Number(await Deno.readTextFile(`${dir}/owner`));
    } catch {
      continue; // being set up, or not ours
    }
    if (!Number.isSafeInteger(owner) || owner <= 0 || alive(owner)) continue;
    await shutdown(`${dir}/data`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function hashHex(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d)].slice(0, 8).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The initdb'd cluster for `user`/`password`, made once and kept. */
async function template(tmp: string, user: string, password: string): Promise<string> {
  const path = `${tmp}/${PREFIX}template-${await hashHex(`15\0${user}\0${password}`)}`;
  try {
    if (Deno.statSync(`${path}/data/PG_VERSION`).isFile) return path;
  } catch { /* not made yet */ }
  const work = await Deno.makeTempDir({ prefix: `${PREFIX}template-work-` });
  try {
    await Deno.writeTextFile(`${work}/pwfile`, `${password}\n`, { mode: 0o600 });
    await own(work);
    await run(`${PG_BIN}/initdb`, [
      "-D",
      `${work}/data`,
      "-U",
      user,
      `--pwfile=${work}/pwfile`,
      "--auth=scram-sha-256",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ]);
    await Deno.remove(`${work}/pwfile`);
    try {
      await Deno.rename(work, path);
    } catch {
      // another process made it first: keep theirs
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
    return path;
  } catch (e) {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    throw e;
  }
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<Postgres> {
  const user = options.user ?? "linkd";
  const password = options.password ?? "linkd-Pg-Secr3t-4d1f";
  const dir = await Deno.makeTempDir({ prefix: PREFIX });
  const tmp = dir.slice(0, dir.lastIndexOf("/"));
  await reapLeftovers(tmp).catch(() => {});
  const data = `${dir}/data`;
  const logFile = `${dir}/postgres.log`;
  const readLog = async () => {
    try {
      return await Deno.readTextFile(logFile);
    } catch {
      return "";
    }
  };
  try {
    const tpl = await template(tmp, user, password);
    const cp = await new Deno.Command("cp", { args: ["-a", `${tpl}/data`, data] }).output();
    if (!cp.success) throw new Error(`Cannot copy the template cluster ${tpl}`);
    await Deno.writeTextFile(`${dir}/owner`, String(Deno.pid));
    if (options.hba?.length) {
      const hba = `${data}/pg_hba.conf`;
      await Deno.writeTextFile(hba, `${options.hba.join("\n")}\n${await Deno.readTextFile(hba)}`);
    }
    if (options.tls) {
      await Deno.writeTextFile(`${dir}/server.crt`, options.tls.cert, { mode: 0o600 });
      await Deno.writeTextFile(`${dir}/server.key`, options.tls.key, { mode: 0o600 });
    }
    await Deno.chmod(dir, 0o700);
    await own(dir);
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }

  // A port taken between freePort() and the bind makes postgres exit: try another.
  for (let attempt = 0;; attempt++) {
    const port = freePort();
    const child = command(`${PG_BIN}/postgres`, [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "logging_collector=off",
      "-c",
      `log_destination=stderr`,
      ...(options.tls
        ? [
          "-c",
          "ssl=on",
          "-c",
          `ssl_cert_file=${dir}/server.crt`,
          "-c",
          `ssl_key_file=${dir}/server.key`,
        ]
        : []),
    ]).spawn();
    // The log goes to our pipe; keep it in the folder for log().
    const logging = (async () => {
      const f = await Deno.open(logFile, { write: true, create: true, append: true });
      await Promise.all([
        child.stdout.pipeTo(f.writable, { preventClose: true }),
        child.stderr.pipeTo(f.writable, { preventClose: true }),
      ]).catch(() => {});
      f.close();
    })();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });

    const deadline = performance.now() + 15_000;
    let ready = false;
    while (!exited && performance.now() < deadline) {
      const pm = await postmaster(data);
      if (pm?.status === "ready") {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!ready) {
      if (!exited) await shutdown(data);
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
      await logging;
      const log = await readLog();
      if (attempt < 2 && /could not bind|Address already in use/.test(log)) continue;
      console.error(`postgres did not start on port ${port}:\n${log}`);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`Cannot start postgres on 127.0.0.1:${port}`);
    }

    let stopped = false;
    return {
      port,
      user,
      password,
      dir,
      url: `postgres://${encodeURIComponent(user)}:${
        encodeURIComponent(password)
      }@127.0.0.1:${port}/postgres`,
      log: readLog,
      psql: (sql) =>
        run(`${PG_BIN}/psql`, [
          "-h",
          dir,
          "-p",
          String(port),
          "-U",
          user,
          "-d",
          "postgres",
          "-v",
          "ON_ERROR_STOP=1",
          "-qAtc",
          sql,
        ], { PGPASSWORD: password }),
      async stop() {
        if (stopped) return;
        stopped = true;
        await shutdown(data);
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await status;
        await logging;
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  }
}
