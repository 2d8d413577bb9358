/**
 * The local authorization server over HTTP (`Deno.serve`, 127.0.0.1, port 0 by default).
 *
 *   POST /auth/O2/create/codepair, /auth/o2/create/codepair   LWA code pair
 *   POST /auth/O2/token, /auth/o2/token                       LWA token (device_code, refresh_token)
 *   POST /oauth2/device_authorization                         RFC 8628 device authorization
 *   POST /oauth2/token                                        RFC 8628 token (URN grant, refresh_token)
 *   GET|POST /code, POST /code/confirm                        the verification page
 *   GET /user/profile                                         the user's profile (bearer token)
 *   /_admin/...                                               JSON admin API, loopback peers only
 *
 * The logic lives in state.ts; this file parses requests, sends Amazon's non-JSON refusals
 * (pages.ts), carries out transport faults (status, hang, malformed, oversized, oauth_error,
 * scope_page) and never logs a token.
 */

import type { Clock } from "../../src/clock.ts";
import { isLoopback, json, mediaType, oauthHeaders, readBody, readForm } from "./_http.ts";
import { faultDescription, type RequestPath, type TransportFault } from "./faults.ts";
import { escapeHtml, handlePage } from "./page.ts";
import { pageResponse } from "./pages.ts";
import { handleProfile } from "./profile.ts";
import { AuthState, type ClientConfig, type Dialect, validateFault } from "./state.ts";

export { AuthState } from "./state.ts";
export type { Client, ClientConfig, Fault, FaultPath, PendingCode, Stats } from "./state.ts";
export type { ExpiresInStyle, RefreshRefusal, RefusalStyle, UnknownCodeError } from "./clients.ts";
export { DEFAULT_USER_ID } from "./profile.ts";

export interface AuthServerOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 0: any free port. */
  port?: number;
  clock?: Clock;
  random?: (n: number) => Uint8Array;
  clients?: ClientConfig[];
  /** Approve every new code at once (a demo without a browser). Default false. */
  autoApprove?: boolean;
  /** The user who approves codes unless one is named; default `DEFAULT_USER_ID`. */
  defaultUserId?: string;
}

export interface AuthServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  lwa: { codepairUrl: string; tokenUrl: string };
  rfc8628: { codepairUrl: string; tokenUrl: string };
  /** The page a user opens (`/code`). */
  verificationUrl: string;
  /** The admin API's root (`/_admin`). */
  adminUrl: string;
  /** `GET` with a bearer access token: the user's profile, as `api.amazon.com/user/profile`. */
  profileUrl: string;
  state: AuthState;
  /** Stops listening; hanging and streaming answers are cut off first, so it returns promptly. */
  close(): Promise<void>;
}

export const PATHS = {
  lwaCodepair: "/auth/O2/create/codepair",
  lwaToken: "/auth/O2/token",
  rfcDevice: "/oauth2/device_authorization",
  rfcToken: "/oauth2/token",
  page: "/code",
  profile: "/user/profile",
  admin: "/_admin",
} as const;

interface FlowRoute {
  dialect: Dialect;
  path: "codepair" | "token";
}

const ENDPOINTS: Record<string, FlowRoute> = {
  "/auth/O2/create/codepair": { dialect: "lwa", path: "codepair" },
  "/auth/o2/create/codepair": { dialect: "lwa", path: "codepair" },
  "/auth/O2/token": { dialect: "lwa", path: "token" },
  "/auth/o2/token": { dialect: "lwa", path: "token" },
  "/oauth2/device_authorization": { dialect: "rfc8628", path: "codepair" },
  "/oauth2/token": { dialect: "rfc8628", path: "token" },
};

/** Starts the server; it listens before this returns. */
export function startAuthServer(options: AuthServerOptions = {}): AuthServer {
  const state = new AuthState({
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.clients ? { clients: options.clients } : {}),
    ...(options.autoApprove !== undefined ? { autoApprove: options.autoApprove } : {}),
    ...(options.defaultUserId !== undefined ? { defaultUserId: options.defaultUserId } : {}),
  });
  const closing = new AbortController();
  let urls: Omit<AuthServer, "state" | "close"> | null = null;

  const handler = (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> =>
    handle(req, info, state, closing.signal, () => urls!);
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen() {},
    onError() {
      return json(500, {
        error: "server_error",
        error_description: "The authorization server encountered an unexpected condition",
      });
    },
  }, handler);

  const addr = server.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${host}:${addr.port}`;
  urls = {
    url,
    lwa: { codepairUrl: url + PATHS.lwaCodepair, tokenUrl: url + PATHS.lwaToken },
    rfc8628: { codepairUrl: url + PATHS.rfcDevice, tokenUrl: url + PATHS.rfcToken },
    verificationUrl: url + PATHS.page,
    adminUrl: url + PATHS.admin,
    profileUrl: url + PATHS.profile,
  };
  state.verificationUri = urls.verificationUrl;

  let closed: Promise<void> | null = null;
  return {
    ...urls,
    state,
    close() {
      closed ??= (async () => {
        closing.abort();
        await server.shutdown();
      })();
      return closed;
    },
  };
}

async function handle(
  req: Request,
  info: Deno.ServeHandlerInfo,
  state: AuthState,
  closing: AbortSignal,
  urls: () => Omit<AuthServer, "state" | "close">,
): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (path === PATHS.admin || path.startsWith(PATHS.admin + "/")) {
    const peer = (info.remoteAddr as Deno.NetAddr).hostname;
    if (!isLoopback(peer)) {
      return json(403, { error: "forbidden", error_description: "The admin API is loopback only" });
    }
    return admin(req, path.slice(PATHS.admin.length) || "/", state, urls);
  }
  if (path === "/code" || path === "/code/confirm") {
    state.count(path, "page");
    return handlePage(req, state, path);
  }
  if (path === PATHS.profile) {
    state.count(path, "profile");
    return handleProfile(req, state);
  }
  const endpoint = ENDPOINTS[path];
  if (!endpoint) {
    state.count(path, "other");
    if (path === "/" && req.method === "GET") return indexPage(urls());
    return json(404, { error: "not_found", error_description: `No endpoint at ${path}` });
  }
  if (req.method !== "POST") {
    state.count(path, endpoint.path === "codepair" ? "codepair" : "token");
    return json(405, {
      error: "invalid_request",
      error_description: `The request method ${req.method} is not supported : use POST`,
    }, { allow: "POST" });
  }

  const read = await readForm(req);
  const request: RequestPath = endpoint.path === "codepair"
    ? "codepair"
    : read.ok && read.form.get("grant_type") === "refresh_token"
    ? "refresh"
    : "poll";
  state.count(path, request === "poll" ? "token" : request);

  const fault = state.takeTransportFault(request);
  if (fault) return faultResponse(fault, endpoint, closing);

  if (!read.ok) {
    return json(read.status, { error: "invalid_request", error_description: read.description });
  }
  const reply = endpoint.path === "codepair"
    ? state.codepair(endpoint.dialect, read.form)
    : state.token(endpoint.dialect, read.form);
  if (reply.page) return pageResponse(reply.page, reply.status);
  return json(reply.status, reply.body);
}

// ── faults ─────────────────────────────────────────────────────────────────

async function faultResponse(
  fault: TransportFault,
  endpoint: FlowRoute,
  closing: AbortSignal,
): Promise<Response> {
  switch (fault.kind) {
    case "status":
      return statusResponse(fault.status);
    case "hang":
      // Never answered while the server runs. A client that gives up closes its end; the handler
      // stays parked (it costs a promise) until close(), which ends every parked handler with the
      // answer a server going down gives. Deno's request.signal is not used: in Deno 2.9 reading
      // it prints a deprecation warning once the answer is sent.
      await new Promise<void>((resolve) => {
        if (closing.aborted) return resolve();
        closing.addEventListener("abort", () => resolve(), { once: true });
      });
      return statusResponse(503);
    case "malformed":
      return malformedResponse(fault.shape ?? "not_json", endpoint);
    case "oversized":
      return oversizedResponse(fault.bytes ?? 1024 * 1024, endpoint, closing);
    case "oauth_error": {
      const description = fault.description === undefined
        ? faultDescription(fault.error)
        : fault.description;
      return json(fault.status ?? 400, {
        error: fault.error,
        ...(description === null ? {} : { error_description: description }),
      });
    }
    case "scope_page":
      return pageResponse("scope_html");
  }
}

/** An error status with the body a real front end or server would send. */
export function statusResponse(status: number): Response {
  const gateway: Record<number, string> = {
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
  };
  const text = gateway[status];
  if (text) {
    // What a load balancer in front of the service answers: HTML, not the OAuth error shape.
    const title = `${status} ${text}`;
    return new Response(
      `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1>` +
        `</center>\r\n</body>\r\n</html>\r\n`,
      { status, headers: { "content-type": "text/html", "cache-control": "no-cache" } },
    );
  }
  if (status === 429) {
    return json(429, {
      error: "too_many_requests",
      error_description: "The rate of requests exceeds the limit",
    }, { "retry-after": "1" });
  }
  if (status >= 500) {
    return json(status, {
      error: "server_error",
      error_description: "The authorization server encountered an unexpected condition",
    });
  }
  const errors: Record<number, [string, string]> = {
    401: ["invalid_client", "Client authentication failed"],
    403: ["unauthorized_client", "The client is not authorized to use this method"],
  };
  const [error, description] = errors[status] ?? ["invalid_request", "The request is invalid"];
  return json(status, { error, error_description: description });
}

function malformedResponse(shape: "not_json" | "wrong_shape", endpoint: FlowRoute): Response {
  if (shape === "not_json") {
    // A body cut short: valid JSON as far as it goes, declared as JSON.
    const body = endpoint.path === "codepair"
      ? '{"user_code":"ABCDEF","device_code":"4b1c'
      : '{"access_token":"Atza|IwEBIA';
    return new Response(body, { status: 200, headers: oauthHeaders() });
  }
  const body = endpoint.path === "codepair"
    ? {
      user_code: 123456,
      device_code: null,
      verification_uri: "",
      expires_in: "600",
      interval: -5,
    }
    : { access_token: 42, token_type: "mac", expires_in: "3600", refresh_token: ["Atzr|"] };
  return new Response(JSON.stringify(body), { status: 200, headers: oauthHeaders() });
}

/** A 200 answer of `bytes` bytes, streamed in chunks without a Content-Length: valid JSON. */
function oversizedResponse(bytes: number, endpoint: FlowRoute, closing: AbortSignal): Response {
  const enc = new TextEncoder();
  const head = enc.encode(
    endpoint.path === "codepair"
      ? '{"user_code":"ABCDEF","device_code":"'
      : '{"access_token":"Atza|',
  );
  const tail = enc.encode(
    endpoint.path === "codepair"
      ? '","verification_uri":"http://127.0.0.1/code","expires_in":600,"interval":5}'
      : '","refresh_token":"Atzr|x","token_type":"bearer","expires_in":3600}',
  );
  const fill = Math.max(0, bytes - head.length - tail.length);
  const chunk = new Uint8Array(16 * 1024).fill(0x41); // "A"
  let sent = -1; // -1: head not yet sent
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (closing.aborted) return controller.close(); // cut short: the JSON never ends
      if (sent < 0) {
        sent = 0;
        return controller.enqueue(head);
      }
      if (sent < fill) {
        const n = Math.min(chunk.length, fill - sent);
        sent += n;
        return controller.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n));
      }
      controller.enqueue(tail);
      controller.close();
    },
  });
  return new Response(stream, { status: 200, headers: oauthHeaders() });
}

// ── admin API ──────────────────────────────────────────────────────────────

async function admin(
  req: Request,
  route: string,
  state: AuthState,
  urls: () => Omit<AuthServer, "state" | "close">,
): Promise<Response> {
  const fail = (status: number, description: string) =>
    json(status, {
      error: status === 404 ? "not_found" : "invalid_request",
      error_description: description,
    });
  let body: unknown = undefined;
  if (req.method === "POST") {
    if (mediaType(req) !== "application/json") return fail(415, "Send application/json");
    const raw = await readBody(req);
    if (raw === null) return fail(413, "The request body is too large");
    try {
      body = raw.length ? JSON.parse(new TextDecoder().decode(raw)) : null;
    } catch {
      return fail(400, "The request body is not JSON");
    }
  }
  const obj = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const str = (k: string): string | null => typeof obj[k] === "string" ? obj[k] as string : null;
  const key = `${req.method} ${route}`;
  try {
    switch (key) {
      case "GET /":
      case "GET /info":
        return json(200, urls());
      case "GET /clients":
        return json(200, { clients: state.clients() });
      case "POST /clients":
        return json(200, { client: state.addClient(obj as unknown as ClientConfig) });
      case "GET /pending":
        return json(200, { pending: state.pending() });
      case "POST /approve":
      case "POST /deny": {
        const code = str("userCode");
        if (code === null) return fail(400, "Missing userCode");
        // approve() checks the user id (a TypeError, so a 400) before it looks the code up.
        const ok = route === "/approve"
          ? state.approve(code, obj["userId"] as string | undefined)
          : state.deny(code);
        return ok ? json(200, { ok: true }) : fail(404, "No pending code matches userCode");
      }
      case "POST /forget": {
        const code = obj["userCode"];
        if (code !== undefined && typeof code !== "string") {
          return fail(400, "userCode must be a string");
        }
        const forgotten = state.forget(code);
        if (code !== undefined && forgotten === 0) return fail(404, "No code matches userCode");
        return json(200, { forgotten });
      }
      case "GET /user":
        return json(200, { userId: state.defaultUserId });
      case "POST /user":
        state.defaultUserId = obj["userId"] as string; // checked by the setter
        return json(200, { userId: state.defaultUserId });
      case "POST /revoke": {
        const token = str("refreshToken");
        const client = str("clientId");
        if (token !== null) {
          return state.revokeRefreshToken(token)
            ? json(200, { revoked: 1 })
            : fail(404, "No such refresh token");
        }
        if (client !== null) return json(200, { revoked: state.revokeClient(client) });
        return fail(400, "Give refreshToken or clientId");
      }
      case "POST /scope": {
        const client = str("clientId");
        const scope = str("scope");
        if (client === null || scope === null) return fail(400, "Give clientId and scope");
        if (obj["enabled"] === false) state.disableScope(client, scope);
        else state.enableScope(client, scope);
        return json(200, { client: state.clients().find((c) => c.clientId === client) });
      }
      case "GET /fault":
        return json(200, state.fault() ?? { fault: null, left: null });
      case "POST /fault": {
        // The body is a Fault, null, or {"fault": Fault | null}.
        const wrapped = body === null || (obj["kind"] === undefined && "fault" in obj);
        const fault = wrapped ? (obj["fault"] ?? null) : body;
        if (fault !== null) validateFault(fault);
        state.setFault(fault);
        return json(200, state.fault() ?? { fault: null, left: null });
      }
      case "DELETE /fault":
        state.setFault(null);
        return json(200, { fault: null, left: null });
      case "GET /stats":
        return json(200, state.stats());
      case "DELETE /stats":
        state.resetStats();
        return json(200, state.stats());
      case "POST /introspect": {
        const token = str("accessToken");
        if (token === null) return fail(400, "Missing accessToken");
        return json(200, state.introspect(token));
      }
      case "POST /auto-approve":
        if (typeof obj["enabled"] !== "boolean") return fail(400, "Give enabled: true or false");
        state.autoApprove = obj["enabled"];
        return json(200, { autoApprove: state.autoApprove });
    }
  } catch (e) {
    if (e instanceof TypeError) return fail(400, e.message);
    throw e;
  }
  return fail(404, `No admin route ${key}`);
}

function indexPage(u: Omit<AuthServer, "state" | "close">): Response {
  const rows = [
    ["LWA code pair", u.lwa.codepairUrl],
    ["LWA token", u.lwa.tokenUrl],
    ["RFC 8628 device authorization", u.rfc8628.codepairUrl],
    ["RFC 8628 token", u.rfc8628.tokenUrl],
    ["Verification page", u.verificationUrl],
    ["User profile", u.profileUrl],
    ["Admin API", u.adminUrl],
  ].map(([k, v]) => `<tr><td>${escapeHtml(k!)}</td><td><code>${escapeHtml(v!)}</code></td></tr>`);
  return new Response(
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>linkd authorization server` +
      `</title></head><body><h1>linkd authorization server</h1><table>${rows.join("")}</table>` +
      `<p><a href="/code">Enter a code</a></p></body></html>\n`,
    { headers: { "content-type": "text/html; charset=utf-8" } },
  );
}
