/**
 * The verification page, in the manner of Amazon's `amazon.com/code`: the user types the code
 * the device shows, sees which client asks for which scopes, and approves or denies.
 *
 *   GET  /code                 the form (prefilled from `?user_code=`)
 *   POST /code                 looks the code up: the confirmation step, or the form with an error
 *   POST /code/confirm         the decision (`decision=approve|deny`), then the result page
 *
 * Plain HTML and inline CSS: no script, no external resource, every echoed value escaped.
 */

import { readBody } from "./_http.ts";
import type { AuthState, CodeLookup } from "./state.ts";

/** Escapes text for HTML content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What each known scope lets a client do, in the words of a consent page. */
const SCOPE_TEXT: Record<string, string> = {
  "alexa:all": "Use Alexa on this device: speak to Alexa and hear her answers",
  "profile": "Your name and email address",
  "profile:user_id": "Your user ID",
  "postal_code": "Your postal code",
  "music::library:read": "Read your music library",
  "music::catalog": "Browse the music catalog",
  "music::playback": "Play music on this device",
  "music::profile": "Your music profile and preferences",
};

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 Arial,Helvetica,sans-serif;color:#0f1111;background:#fff}
header{background:#131921;color:#fff;padding:12px 24px;font-size:20px;font-weight:bold}
header span{color:#febd69}
main{max-width:380px;margin:28px auto;padding:0 12px}
.box{border:1px solid #d5d9d9;border-radius:8px;padding:20px 24px}
h1{font-size:26px;font-weight:400;margin:0 0 12px}
label{display:block;font-weight:bold;margin:12px 0 4px}
input[type=text]{width:100%;height:38px;padding:3px 9px;font-size:22px;letter-spacing:.12em;
text-transform:uppercase;border:1px solid #888c8c;border-radius:4px;font-family:monospace}
button{width:100%;height:34px;margin-top:14px;border-radius:8px;border:1px solid #fcd200;
background:#ffd814;font-size:14px;cursor:pointer}
button.deny{background:#fff;border-color:#d5d9d9}
.error{border:1px solid #c40000;border-radius:8px;padding:10px 14px;margin-bottom:14px;color:#c40000}
.ok{border:1px solid #067d62;border-radius:8px;padding:10px 14px;color:#067d62}
.code{font:bold 20px monospace;letter-spacing:.12em}
.muted{color:#565959;font-size:13px}
ul{padding-left:20px}
footer{max-width:380px;margin:24px auto;padding:0 12px;color:#565959;font-size:12px;text-align:center}
`;

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>linkd <span>sign-in</span></header>
<main>
${body}
</main>
<footer>Local authorization server for linkd</footer>
</body>
</html>
`;
}

/** The first step: a form for the code. */
export function entryPage(options: { userCode?: string; error?: string } = {}): string {
  const error = options.error
    ? `<div class="error" role="alert" id="error">${escapeHtml(options.error)}</div>\n`
    : "";
  return layout(
    "Register your device",
    `<div class="box">
<h1>Register your device</h1>
${error}<form method="post" action="/code">
<label for="user_code">Enter the code shown on your device</label>
<input type="text" id="user_code" name="user_code" value="${escapeHtml(options.userCode ?? "")}"
 maxlength="16" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus>
<button type="submit" id="continue">Continue</button>
</form>
</div>
<p class="muted">The code is case insensitive. Dashes are optional.</p>`,
  );
}

/** The second step: who asks for what, and the two buttons. */
export function confirmPage(code: Extract<CodeLookup, { ok: true }>): string {
  const scopes = code.scopes.map((s) => {
    const text = SCOPE_TEXT[s];
    return `<li><b>${escapeHtml(s)}</b>${text ? `: ${escapeHtml(text)}` : ""}</li>`;
  }).join("\n");
  const device = code.device
    ? `<p class="muted" id="device">Device: product ${escapeHtml(code.device.productId)}, ` +
      `serial ${escapeHtml(code.device.serial)}</p>\n`
    : "";
  const clientId = code.clientName === code.clientId
    ? ""
    : ` <span class="muted">(${escapeHtml(code.clientId)})</span>`;
  return layout(
    "Allow access?",
    `<div class="box">
<h1>Allow access?</h1>
<p>Code <span class="code" id="code">${escapeHtml(code.userCode)}</span></p>
<p><b id="client">${escapeHtml(code.clientName)}</b>${clientId} asks for:</p>
<ul id="scopes">
${scopes}
</ul>
${device}<form method="post" action="/code/confirm">
<input type="hidden" name="user_code" value="${escapeHtml(code.userCode)}">
<input type="hidden" name="nonce" value="${escapeHtml(code.nonce)}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny" class="deny">Deny</button>
</form>
</div>`,
  );
}

/** The last step. */
export function resultPage(approved: boolean, clientName: string): string {
  const text = approved
    ? `Your device is now linked to <b>${escapeHtml(clientName)}</b>. You may close this page.`
    : `You denied access to <b>${escapeHtml(clientName)}</b>. The device will not be linked.`;
  return layout(
    approved ? "Device linked" : "Access denied",
    `<div class="box">
<h1>${approved ? "Success" : "Access denied"}</h1>
<div class="${approved ? "ok" : "error"}" id="result" data-result="${
      approved ? "approved" : "denied"
    }">${text}</div>
</div>`,
  );
}

const REASONS: Record<Exclude<CodeLookup, { ok: true }>["reason"], string> = {
  unknown: "That code is not valid. Check the code shown on your device and try again.",
  expired: "That code has expired. Ask your device for a new code.",
  used: "That code has already been used.",
};

function html(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      "x-frame-options": "DENY",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    },
  });
}

async function pageForm(req: Request): Promise<URLSearchParams | null> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") return null;
  const body = await readBody(req, 16 * 1024);
  if (body === null) return null;
  return new URLSearchParams(new TextDecoder().decode(body));
}

/** Answers `/code` and `/code/confirm`. */
export async function handlePage(req: Request, state: AuthState, path: string): Promise<Response> {
  if (path === "/code" && req.method === "GET") {
    const userCode = new URL(req.url).searchParams.get("user_code") ?? "";
    return html(200, entryPage({ userCode: userCode.slice(0, 16) }));
  }
  if (req.method !== "POST") {
    return new Response("Method Not Allowed", {
      status: 405,
      headers: { allow: path === "/code" ? "GET, POST" : "POST" },
    });
  }
  const form = await pageForm(req);
  if (form === null) return html(400, entryPage({ error: "The form could not be read." }));
  const userCode = (form.get("user_code") ?? "").trim().slice(0, 32);
  if (userCode === "") {
    return html(400, entryPage({ error: "Enter the code shown on your device." }));
  }
  if (path === "/code") {
    const found = state.lookup(userCode);
    if (!found.ok) return html(400, entryPage({ userCode, error: REASONS[found.reason] }));
    return html(200, confirmPage(found));
  }
  const decision = form.get("decision");
  if (decision !== "approve" && decision !== "deny") {
    return html(400, entryPage({ userCode, error: "Choose Approve or Deny." }));
  }
  const done = state.decide(userCode, form.get("nonce") ?? "", decision === "approve");
  if (!done.ok) return html(400, entryPage({ userCode, error: REASONS[done.reason] }));
  return html(200, resultPage(decision === "approve", done.clientName));
}
