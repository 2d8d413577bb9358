/** What the daemon tells the operator (report.ts): one levelled line per change, STATUS=. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { LinkState, PairingInfo } from "../contract.ts";
import type { Level } from "./log.ts";
import { reportingListener, statusLine } from "./report.ts";

const at = (
  state: LinkState["state"],
  error?: { code: string; message: string },
  scopes: string[] = [],
): LinkState => ({ state, since: 1, scopes, ...(error ? { error } : {}) });
const NET = { code: "network", message: "Cannot reach the authorization server (refused)" };
const PAIRING: PairingInfo = {
  user_code: "ABC123",
  verification_uri: "https://amazon.com/us/code",
  expires_at: 1,
  expires_in: 600,
  interval: 5,
};

function rig() {
  const lines: [string, Level | undefined][] = [];
  const status: string[] = [];
  const passed: string[] = [];
  const l = reportingListener(
    {
      state: (s) => passed.push(s.state),
      pairing: (p) => passed.push(p ? "code" : "no code"),
    },
    (line, level) => lines.push([line, level]),
    (s) => status.push(s),
  );
  return { l, lines, status, passed };
}

test("each state change is logged once, with its code and a level", () => {
  const { l, lines, passed } = rig();
  l.state!(at("pairing"));
  l.state!(at("error", NET));
  // The same failure again (a retry; another message): not logged again, still passed on.
  l.state!(at("error", { ...NET, message: "Cannot reach the authorization server (reset)" }));
  l.state!(at("pairing", NET));
  l.state!(at("linked", undefined, ["alexa:all"]));
  l.state!({ ...at("linked", undefined, ["alexa:all"]), since: 2 });
  l.state!(at("unlinked", { code: "invalid_grant", message: "Revoked" }));
  assert.equal(lines, [
    ["linkd: state pairing", "notice"],
    ["linkd: state error (network): Cannot reach the authorization server (refused)", "err"],
    ["linkd: state pairing (network): Cannot reach the authorization server (refused)", "warning"],
    ["linkd: state linked (alexa:all)", "notice"],
    ["linkd: state unlinked (invalid_grant): Revoked", "warning"],
  ]);
  assert.is(passed.length, 7, "every state reaches the bus");
});

test("a pairing code is logged going up and down, never the code itself", () => {
  const { l, lines, status, passed } = rig();
  l.state!(at("pairing"));
  l.pairing!(PAIRING);
  l.pairing!({ ...PAIRING, user_code: "XYZ789" }); // a new code while one is up
  l.pairing!(null);
  assert.equal(lines.slice(1), [
    ["linkd: pairing code shown (expires in 600 s)", "info"],
    ["linkd: pairing code taken down", "info"],
  ]);
  assert.not.match(JSON.stringify([lines, status]), /ABC123|XYZ789|amazon\.com/);
  assert.equal(status, [
    "pairing: asking for a code",
    "pairing: code shown",
    "pairing: asking for a code",
  ]);
  assert.equal(passed, ["pairing", "code", "code", "no code"]);
});

test("STATUS= says the state and its code, on each change only", () => {
  const { l, status } = rig();
  l.state!(at("unprovisioned"));
  l.state!(at("error", NET));
  l.state!(at("error", NET));
  l.state!(at("linked", undefined, ["alexa:all", "profile:user_id"]));
  l.state!(at("linked", { code: "timeout", message: "t" }, ["alexa:all"]));
  assert.equal(status, [
    "unprovisioned",
    "error: network",
    "linked (alexa:all profile:user_id)",
    "linked (alexa:all): timeout",
  ]);
});

test("hostile problem text stays one line in the log and in STATUS=", () => {
  const { l, lines, status } = rig();
  l.state!(
    at("error", { code: "bad\ncode\u2028x", message: "line1\nSTATUS=READY=1\r\n<3>forged" }),
  );
  assert.equal(lines.length, 1);
  assert.not.match(lines[0]![0], /[\n\r\u2028]/);
  assert.not.match(status[0]!, /[\n\r\u2028]/);
  assert.is(statusLine(at("error", { code: "x y", message: "" }), false), "error: x_y");
});

test.run();
