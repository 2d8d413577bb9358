/**
 * The link controller's test rig: a controller against the local authorization server over real
 * HTTP on 127.0.0.1, with fake time, recording every event it reports. Test support only.
 */
import { test } from "uvu";
import {
  type AuthServer,
  type ClientConfig,
  startAuthServer,
} from "../../dev/authserver/server.ts";
import type { Fetch } from "../../src/auth/types.ts";
import { FakeClock } from "./fake_clock.ts";
import type { Dialect } from "../../src/auth/dialect.ts";
import { RecordType } from "../../src/records/types.ts";
import type { Vault } from "../../src/store/vault.ts";
import { decodeTokenRecord } from "../../src/records/token.ts";
import { type TrackedFetch, trackFetch } from "./drive.ts";
import { provisionedVault } from "./link.ts";
import { prng } from "./random.ts";
import type { AccessToken, Capabilities, LinkState, PairingInfo } from "../../src/contract.ts";
import { LinkController, type LinkOptions } from "../../src/link/controller.ts";

export const CLIENT = "amzn1.application-oa2-client.linkdtest";

export interface Rig {
  clock: FakeClock;
  server: AuthServer;
  vault: Vault;
  io: TrackedFetch;
  ctl: LinkController;
  states: LinkState[];
  pairings: (PairingInfo | null)[];
  tokens: AccessToken[];
  caps: Capabilities[];
  /** The sealed token record's refresh token at the moment each token event fired. */
  sealedAtEvent: string[];
  last(): LinkState;
  code(): string;
  paths(kind: "codepair" | "token"): TrackedFetch["log"];
  close(): Promise<void>;
}

export interface RigOptions {
  client?: Partial<ClientConfig>;
  dialect?: Dialect;
  scopes?: string[];
  fallbackScopes?: string[];
  vault?: Vault;
  clock?: FakeClock;
  server?: AuthServer;
  fetch?: (inner: Fetch) => Fetch;
  options?: Partial<LinkOptions>;
}

export function newVault(): Vault {
  return provisionedVault(CLIENT, "SN-LINK-1");
}

/** Every rig a test opened; closed after each test, passed or failed. */
const open = new Set<Rig>();
test.after.each(async () => {
  for (const r of open) await r.close();
  open.clear();
});

export function rig(o: RigOptions = {}): Rig {
  const clock = o.clock ?? new FakeClock();
  const server = o.server ??
    startAuthServer({ clock, clients: [{ clientId: CLIENT, ...o.client }] });
  const vault = o.vault ?? newVault();
  const inner: Fetch = o.fetch ? o.fetch(fetch) : fetch;
  const io = trackFetch(clock, inner);
  const dialect = o.dialect ?? "lwa";
  const ends = dialect === "lwa" ? server.lwa : server.rfc8628;
  const r = {
    clock,
    server,
    vault,
    io,
    states: [] as LinkState[],
    pairings: [] as (PairingInfo | null)[],
    tokens: [] as AccessToken[],
    caps: [] as Capabilities[],
    sealedAtEvent: [] as string[],
  } as Rig;
  r.ctl = new LinkController({
    vault,
    identity: { clientId: CLIENT, productId: "speaker", serial: "SN-LINK-1" },
    auth: {
      dialect,
      codepairUrl: ends.codepairUrl,
      tokenUrl: ends.tokenUrl,
      scopes: o.scopes ?? ["alexa:all"],
      fallbackScopes: o.fallbackScopes ?? ["alexa:all"],
    },
    fetch: io.fetch,
    clock,
    random: prng(7),
    listener: {
      state: (s) => r.states.push(s),
      pairing: (p) => r.pairings.push(p),
      token: (t) => {
        r.tokens.push(t);
        const sealed = vault.get(RecordType.TOKENS);
        r.sealedAtEvent.push(sealed ? decodeTokenRecord(sealed).refresh_token : "");
      },
      capabilities: (c) => r.caps.push(c),
    },
    ...o.options,
  });
  r.last = () => r.states[r.states.length - 1] ?? r.ctl.state;
  r.code = () => {
    const p = [...r.pairings].reverse().find((x) => x !== null);
    if (!p) throw new Error("no code shown");
    return p.user_code;
  };
  r.paths = (kind) =>
    io.log.filter((l) =>
      kind === "codepair" ? /codepair|device_authorization/.test(l.path) : /token/.test(l.path)
    );
  let closed = false;
  r.close = async () => {
    if (closed) return;
    closed = true;
    open.delete(r);
    await r.ctl.stop();
    if (!o.server) await server.close();
  };
  open.add(r);
  return r;
}

export const isState = (r: Rig, s: LinkState["state"]) => () => r.ctl.state.state === s;
