/**
 * The bus login from the configuration: `bus.username`, and the password read from
 * `bus.passwordFile` (one line; a trailing newline is not part of it). The password is never
 * put in a message.
 */
import type { BusConfig } from "../config.ts";
import { Code, LinkdError } from "../errors.ts";
import { readRegularFile } from "../files.ts";

/** Longer than any password a broker would take: a bigger file is not a password file. */
export const MAX_PASSWORD_BYTES = 1024;

export interface BusLogin {
  username: string;
  /** Absent when the file is empty: a broker that allows the user without a password. */
  password?: string;
}

export function busLogin(bus: Pick<BusConfig, "username" | "passwordFile">): BusLogin {
  const where = `bus.passwordFile ${bus.passwordFile}`;
  // A FIFO, socket or device there is refused before it is opened: it could block linkd.
  const bytes = readRegularFile(
    bus.passwordFile,
    MAX_PASSWORD_BYTES + 1,
    (why) => new LinkdError(Code.CONFIG, `Cannot read ${where}: ${why}`),
  );
  if (bytes === null) {
    throw new LinkdError(Code.CONFIG, `Cannot read ${where}: file not found`);
  }
  try {
    if (bytes.length > MAX_PASSWORD_BYTES) {
      throw new LinkdError(
        Code.CONFIG,
        `Cannot use ${where}: more than ${MAX_PASSWORD_BYTES} bytes`,
      );
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new LinkdError(Code.CONFIG, `Cannot use ${where}: not UTF-8 text`);
    }
    const password = text.replace(/\r?\n$/, "");
    if (/[\r\n\0]/.test(password)) {
      throw new LinkdError(Code.CONFIG, `Cannot use ${where}: it must hold one line`);
    }
    return password === "" ? { username: bus.username } : { username: bus.username, password };
  } finally {
    bytes.fill(0);
  }
}
