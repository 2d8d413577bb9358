/** Small HTTP helpers shared by the endpoints, the page and the admin API. */
import { concat } from "../../src/bytes.ts";

/** Request bodies larger than this are refused: no form of these protocols comes near it. */
export const MAX_BODY = 64 * 1024;

/** Reads at most `limit` bytes of `req`'s body; null when it is larger. */
export async function readBody(req: Request, limit = MAX_BODY): Promise<Uint8Array | null> {
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return null;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concat(...chunks);
}

/** The media type of a Content-Type header, lowercased, parameters dropped. */
export function mediaType(req: Request): string {
  return (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

export type FormResult =
  | { ok: true; form: URLSearchParams }
  | { ok: false; status: number; description: string };

/** Reads an `application/x-www-form-urlencoded` body, as OAuth endpoints require. */
export async function readForm(req: Request): Promise<FormResult> {
  if (mediaType(req) !== "application/x-www-form-urlencoded") {
    await req.body?.cancel().catch(() => {});
    return {
      ok: false,
      status: 400,
      description: "The request has an invalid parameter : Content-Type must be " +
        "application/x-www-form-urlencoded",
    };
  }
  const body = await readBody(req);
  if (body === null) {
    return { ok: false, status: 413, description: "The request body is too large" };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return { ok: false, status: 400, description: "The request body is not valid UTF-8" };
  }
  return { ok: true, form: new URLSearchParams(text) };
}

/** The headers every OAuth answer carries (RFC 6749 section 5.1). */
export function oauthHeaders(extra: Record<string, string> = {}): Headers {
  return new Headers({
    "content-type": "application/json;charset=UTF-8",
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-amzn-requestid": crypto.randomUUID(),
    ...extra,
  });
}

export function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: oauthHeaders(extra) });
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
