/**
 * What the bus's log lines may say about a broker and an error: the broker's address without
 * the credentials a URL may carry, and an error's first line with its code. Nothing here ever
 * prints a payload.
 */
import { invalidArgument } from "../text.ts";

/** host:port of the URL, for logs: never the credentials a URL may carry. */
export function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    throw invalidArgument(`Bus URL is not a URL`);
  }
}

/** The first line of an error's message and its code, for a log line. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.message.split("\n")[0]}${code !== undefined ? ` (${String(code)})` : ""}`;
  }
  return "unknown error";
}
