/**
 * What `linkd run` tells the operator about the link: one log line per state change, with the
 * problem's code when it has one, and a one-line status for systemd (`STATUS=`, shown by
 * `systemctl status`).
 *
 * - A change is a new state name, problem code or set of granted scopes; the same state again
 *   (a retry failing the same way, a new `since`, the account read) is not logged again.
 * - Levels: state `error` is `err`; another state with a problem (`pairing` after a network
 *   failure, `linked` after a failed refresh) is `warning`; the rest are `notice`. A pairing code
 *   going up or down is `info`, without the code (it is shown on the speaker, not in the log).
 * - Never a token, a code or a payload: only the state's name, scopes, problem code and message.
 */
import type { LinkState, PairingInfo } from "../contract.ts";
import type { LinkListener } from "../link/controller.ts";
import { oneLine } from "../text.ts";
import type { Level, Log } from "./log.ts";

/** The `STATUS=` text of a state (one line, no secrets), e.g. `linked (alexa:all)`. */
export function statusLine(s: LinkState, codeShown: boolean): string {
  const code = s.error ? safeCode(s.error.code) : "";
  const scopes = s.scopes.map(safeCode).filter((x) => x !== "").join(" ");
  switch (s.state) {
    case "linked":
      return `linked (${scopes || "no scopes"})${code ? `: ${code}` : ""}`;
    case "pairing":
      return `pairing: ${code || (codeShown ? "code shown" : "asking for a code")}`;
    default:
      return code ? `${s.state}: ${code}` : s.state;
  }
}

/** The log line of a state and its level. */
export function stateLine(s: LinkState): [string, Level] {
  const scopes = s.state === "linked"
    ? ` (${s.scopes.map(safeCode).filter((x) => x !== "").join(" ") || "no scopes"})`
    : "";
  if (!s.error) return [`linkd: state ${s.state}${scopes}`, "notice"];
  const message = oneLine(String(s.error.message ?? ""), 300);
  const line = `linkd: state ${s.state}${scopes} (${safeCode(s.error.code)}): ${message}`;
  return [line, s.state === "error" ? "err" : "warning"];
}

/** A problem code or scope as log text: printable, at most 64 characters. */
function safeCode(x: unknown): string {
  return oneLine(String(x ?? ""), 64).replace(/\s/g, "_");
}

/**
 * `listener`, which also logs each state change once (and each pairing code going up or down)
 * and passes the new status to `onStatus`.
 */
export function reportingListener(
  listener: LinkListener,
  log: Log,
  onStatus?: (status: string) => void,
): LinkListener {
  let logged = "";
  let state: LinkState | null = null;
  let shown = false;
  let status = "";
  const tell = () => {
    if (!state) return;
    const next = statusLine(state, shown);
    if (next === status) return;
    status = next;
    try {
      onStatus?.(next);
    } catch { /* a failing notifier must not stop the link */ }
  };
  return {
    ...listener,
    state: (s) => {
      const key = JSON.stringify([s.state, s.error?.code ?? null, s.scopes]);
      if (key !== logged) {
        logged = key;
        const [line, level] = stateLine(s);
        log(line, level);
      }
      state = s;
      listener.state?.(s);
      tell();
    },
    pairing: (p: PairingInfo | null) => {
      if (p && !shown) {
        const left = Math.max(0, Math.round(Number(p.expires_in) || 0));
        log(`linkd: pairing code shown (expires in ${left} s)`, "info");
      } else if (!p && shown) log("linkd: pairing code taken down", "info");
      shown = p !== null;
      listener.pairing?.(p);
      tell();
    },
  };
}
