/**
 * The systemd notify protocol (sd_notify(3)) without libsystemd: one datagram of
 * newline-separated `KEY=VALUE` assignments sent to the AF_UNIX SOCK_DGRAM socket named by
 * `NOTIFY_SOCKET` (a file-system path, or `@name` for the abstract namespace).
 *
 * How the datagram is sent, and why. Deno 2.9 has no stable API for Unix datagram sockets:
 * - `Deno.connect({ transport: "unix" })` and `node:net` are SOCK_STREAM only; connecting a
 *   stream to systemd's datagram socket fails with EPROTOTYPE.
 * - `node:dgram` has no AF_UNIX support (neither has Node).
 * - `Deno.listenDatagram({ transport: "unixpacket" })` is a SOCK_DGRAM socket, but only behind
 *   `--unstable-net`, it must be bound to a path of its own in a writable folder (a file left
 *   behind on a crash), and it cannot address the abstract namespace.
 * - `systemd-notify` is not installed on the speaker, and since it is a different process it
 *   needs `NotifyAccess=all`, which lets any process of the service forge READY/WATCHDOG.
 * - Deno's FFI (`Deno.dlopen`, stable in Deno 2) calling libc's `socket(AF_UNIX, SOCK_DGRAM)`
 *   and `sendto()`: no unstable flag, no file of its own, abstract names work, the datagram
 *   comes from the main PID (so `NotifyAccess=main` holds), and `MSG_DONTWAIT` keeps a full
 *   receive queue from blocking the event loop. libc.so.6 is always there, because the Deno
 *   runtime itself links against glibc.
 *
 * So FFI is the mechanism: the daemon needs `--allow-ffi` (Deno's check of a scoped
 * `--allow-ffi=PATH` wants the library's absolute, per-architecture path, so the daemon's
 * permission set is plain `--allow-ffi`). When FFI is not granted but the program runs with
 * `--unstable-net`, the notifier falls back to `Deno.listenDatagram` on a socket bound in a
 * fresh temporary folder (Deno 2.9 wants `--allow-net --allow-read --allow-write` for that,
 * which is why FFI is preferred; path sockets only).
 * With neither, `notify` returns false and `lastError` says which flag is missing.
 *
 * `notify` never throws: it resolves to whether the datagram was handed to the kernel.
 */
import { oneLine } from "../text.ts";

/** Sends sd_notify(3) states. */
export interface Notifier {
  /** Sends `state` (e.g. `READY=1`); false when it could not be sent. Never throws. */
  notify(state: string): Promise<boolean>;
}

/** How a SystemdNotifier sends: chosen on the first `notify`. */
export type NotifyMechanism = "ffi" | "unstable-net" | "none";

/** Largest state systemd reads in one datagram (its NOTIFY_BUFFER_MAX is PIPE_BUF). */
export const MAX_NOTIFY_BYTES = 4096;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(sockaddr_un.sun_path) on Linux. */
const SUN_PATH_BYTES = 108;

/**
 * The `sockaddr_un` for a NOTIFY_SOCKET value, or a reason it is not one linkd can address
 * (systemd accepts only absolute paths and `@` abstract names here; `vsock:` is not supported).
 */
export function notifyAddress(value: string): Uint8Array | string {
  const name = new TextEncoder().encode(value);
  if (value.startsWith("@")) {
    if (name.length < 2) return "NOTIFY_SOCKET names an empty abstract socket";
    if (name.length > SUN_PATH_BYTES) return "NOTIFY_SOCKET is too long for a unix socket";
    const addr = new Uint8Array(2 + name.length); // no trailing NUL: the length delimits it
    addr.set(name, 2);
    addr[2] = 0; // the leading NUL of an abstract name
    return fixFamily(addr);
  }
  if (!value.startsWith("/")) {
    return `NOTIFY_SOCKET ${JSON.stringify(value.slice(0, 60))} is not an absolute path or @name`;
  }
  if (name.includes(0)) return "NOTIFY_SOCKET contains a NUL byte";
  if (name.length >= SUN_PATH_BYTES) return "NOTIFY_SOCKET is too long for a unix socket";
  const addr = new Uint8Array(2 + name.length + 1);
  addr.set(name, 2);
  return fixFamily(addr);
}

/** Writes sa_family (a host-order u16) into the first two bytes. */
function fixFamily(addr: Uint8Array): Uint8Array {
  new DataView(addr.buffer).setUint16(0, AF_UNIX, littleEndian());
  return addr;
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

const LIBC_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;

/** libc names tried in order: glibc (what Deno links against), then a musl-style name. */
const LIBC_NAMES = ["libc.so.6", "libc.so"];

function granted(name: "ffi" | "read" | "write" | "net"): boolean {
  try {
    return Deno.permissions.querySync({ name }).state === "granted";
  } catch {
    return false;
  }
}

/** A notifier bound to one NOTIFY_SOCKET. */
export class SystemdNotifier implements Notifier {
  readonly socket: string;
  readonly #force: NotifyMechanism | undefined;
  #mechanism: NotifyMechanism | undefined;
  #lastError: string | undefined;
  #addr: Uint8Array | string;
  #libc: Libc | undefined;
  #fd = -1;
  #conn: DatagramConn | undefined;
  #tempDir: string | undefined;

  constructor(socket: string, options: { mechanism?: NotifyMechanism } = {}) {
    this.socket = socket;
    this.#force = options.mechanism;
    this.#addr = notifyAddress(socket);
  }

  /** The mechanism in use, or undefined before the first `notify`. */
  get mechanism(): NotifyMechanism | undefined {
    return this.#mechanism;
  }

  /** Why the last `notify` returned false (one line), or undefined after a success. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  notify(state: string): Promise<boolean> {
    try {
      return this.#send(state).catch((e) => this.#fail(errorLine(e)));
    } catch (e) {
      return Promise.resolve(this.#fail(errorLine(e)));
    }
  }

  /**
   * Releases the socket (and the fallback's temporary folder); a later `notify` opens a new
   * one. Never throws.
   */
  close(): void {
    try {
      if (this.#fd >= 0) this.#libc?.symbols.close(this.#fd);
    } catch { /* nothing to do */ }
    this.#fd = -1;
    try {
      this.#libc?.close();
    } catch { /* nothing to do */ }
    this.#libc = undefined;
    try {
      this.#conn?.close();
    } catch { /* nothing to do */ }
    this.#conn = undefined;
    if (this.#tempDir !== undefined) {
      try {
        Deno.removeSync(this.#tempDir, { recursive: true });
      } catch { /* nothing to do */ }
      this.#tempDir = undefined;
    }
  }

  #fail(why: string): boolean {
    this.#lastError = why;
    return false;
  }

  async #send(state: string): Promise<boolean> {
    if (typeof this.#addr === "string") return this.#fail(this.#addr);
    const bytes = new TextEncoder().encode(state);
    if (bytes.length === 0) return this.#fail("empty notify state");
    if (bytes.length > MAX_NOTIFY_BYTES) {
      return this.#fail(`notify state of ${bytes.length} bytes exceeds ${MAX_NOTIFY_BYTES}`);
    }
    if (this.#mechanism === undefined) this.#mechanism = this.#choose();
    switch (this.#mechanism) {
      case "ffi":
        return this.#sendFfi(bytes, this.#addr);
      case "unstable-net":
        return await this.#sendNet(bytes);
      default:
        return this.#fail(
          "cannot send to NOTIFY_SOCKET: run linkd with --allow-ffi (or --unstable-net)",
        );
    }
  }

  #choose(): NotifyMechanism {
    const canNet = typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function" &&
      this.socket.startsWith("/");
    if (this.#force !== undefined) return this.#force;
    if (granted("ffi")) return "ffi";
    if (canNet && granted("read") && granted("write") && granted("net")) return "unstable-net";
    return "none";
  }

  #sendFfi(bytes: Uint8Array, addr: Uint8Array): boolean {
    if (this.#libc === undefined) {
      let why = "";
      for (const name of LIBC_NAMES) {
        try {
          this.#libc = Deno.dlopen(name, LIBC_SYMBOLS);
          break;
        } catch (e) {
          why ||= errorLine(e);
        }
      }
      if (this.#libc === undefined) return this.#fail(`cannot load libc: ${why}`);
    }
    const c = this.#libc.symbols;
    if (this.#fd < 0) {
      this.#fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (this.#fd < 0) return this.#fail(`socket(AF_UNIX, SOCK_DGRAM) failed: ${this.#errno()}`);
    }
    const flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    const sent = c.sendto(this.#fd, bytes, BigInt(bytes.length), flags, addr, addr.length);
    if (Number(sent) !== bytes.length) {
      return this.#fail(`sendto ${this.socket} failed: ${this.#errno()}`);
    }
    this.#lastError = undefined;
    return true;
  }

  #errno(): string {
    try {
      const p = this.#libc!.symbols.__errno_location();
      if (p === null) return "unknown error";
      const n = new Deno.UnsafePointerView(p).getInt32();
      return ERRNO_NAMES[n] ?? `errno ${n}`;
    } catch {
      return "unknown error";
    }
  }

  async #sendNet(bytes: Uint8Array): Promise<boolean> {
    const net = Deno as unknown as {
      listenDatagram(o: { transport: "unixpacket"; path: string }): DatagramConn;
    };
    if (this.#conn === undefined) {
      this.#tempDir = Deno.makeTempDirSync({ prefix: "linkd-notify-" });
      this.#conn = net.listenDatagram({ transport: "unixpacket", path: `${this.#tempDir}/s` });
    }
    const to = { transport: "unixpacket" as const, path: this.socket };
    const n = await this.#conn.send(bytes, to);
    if (n !== bytes.length) return this.#fail(`short send to ${this.socket}`);
    this.#lastError = undefined;
    return true;
  }
}

/** The part of Deno's unstable DatagramConn the fallback uses. */
interface DatagramConn {
  send(p: Uint8Array, addr: { transport: "unixpacket"; path: string }): Promise<number>;
  close(): void;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT (no such socket)",
  11: "EAGAIN (the receiver's queue is full)",
  13: "EACCES",
  91: "EPROTOTYPE (not a datagram socket)",
  111: "ECONNREFUSED (nobody listens on the socket)",
};

/** An error as one line of at most 200 characters, for `lastError`. */
function errorLine(e: unknown): string {
  return oneLine(e instanceof Error ? `${e.name}: ${e.message}` : String(e)).slice(0, 200);
}

/**
 * The notifier for this process's NOTIFY_SOCKET, or null when it is unset or empty (not run
 * by systemd as Type=notify). An unusable value still gives a notifier, whose `notify`
 * returns false with the reason in `lastError`, so the daemon logs it once.
 */
export function systemdNotifier(
  env: (name: string) => string | undefined,
  options: { mechanism?: NotifyMechanism } = {},
): SystemdNotifier | null {
  const socket = env("NOTIFY_SOCKET");
  if (socket === undefined || socket === "") return null;
  return new SystemdNotifier(socket, options);
}
