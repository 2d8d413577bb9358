/**
 * The authorization server's answers that are not JSON: how Amazon refuses a scope a security
 * profile is not enabled for outside the JSON API (see ../shared/PROTOCOL.md). Amazon's browser
 * flow sends a small HTML error page, "400 Bad Request - An unknown scope was requested"; a
 * plain-text variant covers front ends that strip the page to its title. Both are HTTP 400 and
 * carry the same words, which is what a client must recognise.
 */

import { UNKNOWN_SCOPE } from "./state.ts";

/** An answer that is not JSON; state.ts names it in a `Reply`, this file renders it. */
export type PageKind = "scope_html" | "scope_text";

/** The line both variants say. */
export const UNKNOWN_SCOPE_LINE = `400 Bad Request - ${UNKNOWN_SCOPE}`;

/** Amazon's error page for an unknown scope, as its browser flow serves it. */
export const UNKNOWN_SCOPE_HTML = `<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${UNKNOWN_SCOPE_LINE}</title>
<style>
body{margin:0;font:13px/19px Arial,sans-serif;color:#111;background:#fff}
.a-page{max-width:350px;margin:0 auto;padding:14px 18px}
.a-logo{display:block;margin:0 auto 18px;text-align:center;font:bold 28px Arial,sans-serif;
color:#111;text-decoration:none}
.a-box{border:1px solid #c40000;border-radius:4px;padding:14px 18px 14px 18px}
.a-alert-heading{margin:0 0 4px;color:#c40000;font-size:17px;font-weight:400}
</style>
</head>
<body>
<div class="a-page">
<a class="a-logo" href="https://www.amazon.com/" aria-label="Amazon">amazon</a>
<div class="a-box a-alert a-alert-error" role="alert">
<h4 class="a-alert-heading">There was a problem</h4>
<div class="a-alert-content" id="error-message">${UNKNOWN_SCOPE_LINE}</div>
</div>
</div>
</body>
</html>
`;

/** The HTTP answer for a `PageKind`, with the headers Amazon's front end sends. */
export function pageResponse(kind: PageKind, status = 400): Response {
  const html = kind === "scope_html";
  return new Response(html ? UNKNOWN_SCOPE_HTML : UNKNOWN_SCOPE_LINE, {
    status,
    headers: {
      "content-type": html ? "text/html;charset=UTF-8" : "text/plain;charset=UTF-8",
      "cache-control": "no-cache, no-store, must-revalidate",
      "pragma": "no-cache",
      "x-amzn-requestid": crypto.randomUUID(),
    },
  });
}
