/**
 * A real HSM for the line key's tests: Debian's SoftHSM2 with a fresh token in a temporary
 * folder (SOFTHSM2_CONF names a conf whose `directories.tokendir` is there; it is set for this
 * process, as the library reads it when loaded), and an Ed25519 key pair generated inside it by
 * OpenSC's pkcs11-tool (`--keypairgen --key-type EC:edwards25519`, opensc 0.23).
 * `haveSoftHsm()` lets a machine without them skip cleanly; CI (env CI) installs them
 * (scripts/setup.sh), so there a missing one fails.
 */
export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";
export const TOKEN_LABEL = "line";
export const KEY_LABEL = "line-key";
/** A PIN distinctive enough that a test can look for it in every message. */
export const USER_PIN = "7391-pin-never-shown";
const SO_PIN = "5820-so-pin-never-shown";

export interface SoftHsm {
  /** The key's PKCS #11 URI, with module-path and pin-source. */
  readonly uri: string;
  /** The file holding USER_PIN (mode 0600). */
  readonly pinFile: string;
  readonly dir: string;
  /** The key's public key as pkcs11-tool reads it (SubjectPublicKeyInfo's last 32 bytes). */
  readonly publicKey: Uint8Array;
  /** Runs pkcs11-tool on the token with `args` (logged in), returning stdout. */
  tool(args: string[]): Promise<Uint8Array>;
  cleanup(): void;
}

async function run(cmd: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

/** True when SoftHSM2's module and both tools are there. */
export function haveSoftHsm(): boolean {
  try {
    Deno.statSync(SOFTHSM_MODULE);
    Deno.statSync("/usr/bin/softhsm2-util");
    Deno.statSync("/usr/bin/pkcs11-tool");
    return true;
  } catch {
    return false;
  }
}

/** `test` when SoftHSM2 is there; `test.skip` with a warning otherwise (fails on CI). */
export function whenSoftHsm<T extends { skip: unknown }>(test: T): T {
  if (haveSoftHsm() || Deno.env.get("CI")) return test;
  console.warn("SKIPPING the HSM tests: softhsm2 or opensc is not installed");
  return test.skip as T;
}

/**
 * A fresh token `line` holding the Ed25519 key pair `line-key` (id 01). Only one SoftHSM per
 * process: SOFTHSM2_CONF is read once, when the library is first loaded.
 */
export async function startSoftHsm(): Promise<SoftHsm> {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-softhsm-" });
  Deno.mkdirSync(`${dir}/tokens`);
  const conf = `${dir}/softhsm2.conf`;
  Deno.writeTextFileSync(
    conf,
    `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  Deno.env.set("SOFTHSM2_CONF", conf);
  await run("softhsm2-util", [
    "--init-token",
    "--free",
    "--label",
    TOKEN_LABEL,
    "--pin",
    USER_PIN,
    "--so-pin",
    SO_PIN,
  ]);
  const tool = (args: string[]) =>
    run("pkcs11-tool", [
      "--module",
      SOFTHSM_MODULE,
      "--token-label",
      TOKEN_LABEL,
      "--login",
      "--pin",
      USER_PIN,
      ...args,
    ]);
  await tool(["--keypairgen", "--key-type", "EC:edwards25519", "--label", KEY_LABEL, "--id", "01"]);
  const pem = new TextDecoder().decode(
    await tool(["--read-object", "--type", "pubkey", "--label", KEY_LABEL]),
  );
  const der = Uint8Array.from(
    atob(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "")),
    (c) => c.charCodeAt(0),
  );
  const pinFile = `${dir}/pin`;
  Deno.writeTextFileSync(pinFile, `${USER_PIN}\n`, { mode: 0o600 });
  Deno.chmodSync(pinFile, 0o600);
  return {
    uri:
      `pkcs11:token=${TOKEN_LABEL};object=${KEY_LABEL}?module-path=${SOFTHSM_MODULE}&pin-source=file:${pinFile}`,
    pinFile,
    dir,
    publicKey: der.slice(der.length - 32),
    tool,
    cleanup: () => Deno.removeSync(dir, { recursive: true }),
  };
}
