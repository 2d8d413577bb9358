/**
 * The users who approve codes, and `GET /user/profile`, what https://api.amazon.com/user/profile
 * answers a bearer access token: the user id for `profile:user_id`, the user id, name and email
 * for `profile`. The newer Alexa SDK reads it once after linking to notice that the account
 * changed (see ../shared/PROTOCOL.md).
 *
 * User ids have LWA's shape, `amzn1.account.` and 28 uppercase letters and digits. Names and
 * emails are invented from the id, so the same user always has the same profile.
 *
 *   200 {"user_id"} or {"user_id","name","email"}
 *   401 invalid_token (missing, unknown, expired or revoked token), WWW-Authenticate: Bearer
 *   403 insufficient_scope (a token granted neither profile scope)
 *   405 any method but GET
 */

import { invalidArgument } from "../../src/text.ts";
import { json } from "./_http.ts";
import type { AuthState } from "./state.ts";

/** An LWA user id. */
export const USER_ID = /^amzn1\.account\.[A-Z0-9]{28}$/;
/** The user who approves codes unless told otherwise. */
export const DEFAULT_USER_ID = "amzn1.account.AFLINKDDEMOUSER0000000000001";

/** Throws a TypeError unless `userId` has LWA's shape. */
export function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== "string" || !USER_ID.test(userId)) {
    throw invalidArgument(
      "Cannot use user id: expected amzn1.account. and 28 uppercase letters and digits",
    );
  }
}

const NAMES = [
  "Alex Morgan",
  "Sam Rivera",
  "Jordan Lee",
  "Taylor Kim",
  "Casey Novak",
  "Robin Weber",
  "Kai Tanaka",
  "Noor Haddad",
];

/** The user's name and email: invented, and the same every time for the same id. */
export function demoProfile(userId: string): { name: string; email: string } {
  let h = 0;
  for (const c of userId) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const name = NAMES[h % NAMES.length]!;
  const local = name.toLowerCase().replace(" ", ".");
  return { name, email: `${local}+${userId.slice(-4).toLowerCase()}@example.com` };
}

const INVALID_TOKEN = { error: "invalid_token", error_description: "The access token is invalid" };

function invalidToken(): Response {
  return json(401, INVALID_TOKEN, { "www-authenticate": 'Bearer error="invalid_token"' });
}

/** Answers `/user/profile` (the caller counts the request). */
export function handleProfile(req: Request, state: AuthState): Response {
  if (req.method !== "GET") {
    return json(405, {
      error: "invalid_request",
      error_description: `The request method ${req.method} is not supported : use GET`,
    }, { allow: "GET" });
  }
  // RFC 6750: the Authorization header, or (as LWA also accepts) the access_token parameter.
  const header = req.headers.get("authorization");
  const query = new URL(req.url).searchParams.get("access_token");
  if (header !== null && query !== null) {
    return json(400, {
      error: "invalid_request",
      error_description: "The request gives the access token more than once",
    });
  }
  const bearer = header === null ? null : /^Bearer +(\S+) *$/i.exec(header)?.[1] ?? "";
  const token = bearer ?? query ?? "";
  const owner = token === "" ? null : state.tokenOwner(token);
  if (!owner) return invalidToken();
  const full = owner.scopes.includes("profile");
  if (!full && !owner.scopes.includes("profile:user_id")) {
    return json(403, {
      error: "insufficient_scope",
      error_description: "The access token does not grant the profile or profile:user_id scope",
    }, { "www-authenticate": 'Bearer error="insufficient_scope", scope="profile:user_id"' });
  }
  return json(
    200,
    full ? { user_id: owner.userId, ...demoProfile(owner.userId) } : {
      user_id: owner.userId,
    },
  );
}
