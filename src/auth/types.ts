/**
 * The shapes every part of the code-pair flow agrees on. Times from a server are seconds, as
 * the protocols send them; linkd's deadlines are monotonic milliseconds (see clock.ts).
 */

/** The server's answer to a code-pair (device authorization) request, validated. */
export interface CodePair {
  readonly deviceCode: string;
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete?: string;
  /** Seconds the codes live. */
  readonly expiresIn: number;
  /** Seconds to wait between polls (RFC 8628 default 5). */
  readonly interval: number;
}

/** The server's answer to a token request (device code or refresh grant), validated. */
export interface TokenSet {
  readonly accessToken: string;
  /** Absent when a refresh answer did not rotate it: keep the old one. */
  readonly refreshToken?: string;
  readonly tokenType: string;
  /** Seconds the access token lives. */
  readonly expiresIn: number;
  /** Space-separated scopes when the server names them (RFC 6749 5.1); LWA does not. */
  readonly scope?: string;
}

/** What the device says about itself in a code-pair request. */
export interface DeviceIdentity {
  readonly clientId: string;
  readonly productId: string;
  readonly serial: string;
}

/**
 * What linkd reads of an HTTP answer. A `Response` (Deno's `fetch`, the tests' fakes) has it, and
 * so has src/net/http1.ts's own answer, which does without `Response`, `Headers` and a
 * `ReadableStream` (they cost the daemon 2.5 MiB of peak memory over 1000 refreshes).
 */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** Null when the answer has no body. */
  readonly body: ResponseBody | null;
}

/** A body read piece by piece, as a `ReadableStream<Uint8Array>` is. */
export interface ResponseBody {
  getReader(): BodyReader;
  /** Stops reading and closes the connection. */
  cancel(reason?: unknown): Promise<void>;
}

export interface BodyReader {
  /** The next piece, or `done` at the end; rejects when the body fails or was stopped. */
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

/** `fetch`, injected: tests and the bench pass their own. */
export type Fetch = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<FetchResponse>;
