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

/** `fetch`, injected: tests and the bench pass their own. */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
