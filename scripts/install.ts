/**
 * Where each shipped file goes on the speaker, and with which mode: the one install map. build.ts
 * stages it into a folder (stageOverlay) and packs that as the root-filesystem overlay, which a
 * Yocto or Buildroot recipe only unpacks; test/build_test.ts checks that firmware/README.md's table
 * says the same, and runs linkd from the unpacked overlay.
 *
 * `from` is as the README's table writes it: a path under firmware/ (`../README.md` is the
 * project's README), or `payload/NAME`, a file of the build's payload for the architecture
 * (target/firmware/<arch>/: the runtime, the bundle and the launcher; or only `linkd`, the
 * compiled executable, when `deno compile` built it). Every folder is root's, mode 0755.
 */

export interface Install {
  from: string;
  to: string;
  mode: number;
}

/** Where the runtime, the bundle and the launcher go (the launcher finds the rest beside it). */
export const LIB_DIR = "/usr/lib/linkd";

export const INSTALL: Install[] = [
  { from: "payload/deno", to: `${LIB_DIR}/deno`, mode: 0o755 },
  { from: "payload/linkd", to: `${LIB_DIR}/linkd`, mode: 0o755 },
  { from: "payload/linkd.js", to: `${LIB_DIR}/linkd.js`, mode: 0o644 },
  { from: "linkd.json", to: "/etc/linkd/linkd.json", mode: 0o644 },
  { from: "systemd/linkd.service", to: "/usr/lib/systemd/system/linkd.service", mode: 0o644 },
  { from: "init.d/S80linkd", to: "/etc/init.d/S80linkd", mode: 0o755 },
  { from: "sysusers.d/linkd.conf", to: "/usr/lib/sysusers.d/linkd.conf", mode: 0o644 },
  { from: "tmpfiles.d/linkd.conf", to: "/usr/lib/tmpfiles.d/linkd.conf", mode: 0o644 },
  { from: "udev/60-linkd.rules", to: "/usr/lib/udev/rules.d/60-linkd.rules", mode: 0o644 },
  { from: "mosquitto/linkd.conf", to: "/etc/mosquitto/conf.d/linkd.conf", mode: 0o644 },
  { from: "mosquitto/acl", to: "/etc/mosquitto/linkd.acl", mode: 0o644 },
  { from: "../README.md", to: "/usr/share/doc/linkd/README.md", mode: 0o644 },
];

/** Symbolic links, relative so that they hold in an unpacked overlay too: path → target. */
export const LINKS: { to: string; target: string }[] = [
  { to: "/usr/bin/linkd", target: "../lib/linkd/linkd" },
];

/**
 * Stages the overlay into the empty folder `stage`: each INSTALL entry whose source exists
 * (`payload` maps a payload file's name to its path; a missing payload file is skipped, any
 * other missing source throws), then LINKS. Returns the staged regular files' paths, sorted.
 */
export function stageOverlay(
  stage: string,
  firmwareDir: string,
  payload: Record<string, string>,
): string[] {
  const files: string[] = [];
  const mkdirs = (path: string) => {
    const parts = path.split("/").filter((p) => p !== "").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `${stage}/${parts.slice(0, i).join("/")}`;
      Deno.mkdirSync(dir, { recursive: true });
      Deno.chmodSync(dir, 0o755);
    }
  };
  for (const e of INSTALL) {
    const p = /^payload\/(.+)$/.exec(e.from);
    const source = p ? payload[p[1]!] : `${firmwareDir}/${e.from}`;
    if (source === undefined) continue;
    mkdirs(e.to);
    Deno.copyFileSync(source, `${stage}${e.to}`);
    Deno.chmodSync(`${stage}${e.to}`, e.mode);
    files.push(`${stage}${e.to}`);
  }
  for (const l of LINKS) {
    mkdirs(l.to);
    Deno.symlinkSync(l.target, `${stage}${l.to}`);
  }
  return files.sort();
}
