/**
 * The configuration file (CONTRACT.md section 2): JSON, every key optional, an unknown key or a
 * wrong type is `Code.CONFIG` (exit 78) with the key's dotted path in the message.
 *
 * Extensions beyond the contract's example (all optional, all defaulted):
 * - `flash.writeSize`: program alignment in bytes (default 4);
 * - `auth.region`: `na` | `eu` | `fe`, picks the LWA host (api.amazon.com, api.amazon.co.uk,
 *   api.amazon.co.jp) for `codepairUrl` and `tokenUrl` when those are not given (dialect `lwa` only);
 * - `display.lang`: the BCP 47 language of spoken prompts (default `en-US`);
 * - `display.segment`: `{digits, kind}`, the LED segment display (default 4 digits of 7 segments);
 * - `display.screen`: `{width, height}` in pixels (default 128×64).
 *
 * The file is hostile input: messages quote at most 60 characters of any value or key.
 *
 * Config parses and words messages; each rule it checks has one owner that it asks: the topic
 * prefix (bus/topics.ts), the dialects, regions, hosts, LWA URLs and the scope-token grammar
 * (auth/dialect.ts), the flash geometry (flash/driver.ts) and what the store needs of it
 * (store/capacity.ts), the display outputs (present/outputs.ts) and geometry (present/geometry.ts),
 * control characters (text.ts).
 */
import { dirname, resolve } from "./paths.ts";
import { Code, LinkdError } from "./errors.ts";
import { readRegularFile } from "./files.ts";
import { hasControl, oneLine } from "./text.ts";
import { prefixProblem } from "./bus/topics.ts";
import {
  type Dialect,
  DIALECT_NAMES,
  isScopeToken,
  lwaUrls,
  type Region,
  REGIONS,
} from "./auth/dialect.ts";
import { DEFAULT_GEOMETRY, type FlashGeometry, geometryProblem } from "./flash/driver.ts";
import { capacityShortfall, MIN_LIVE_BYTES, MIN_RECORD_BYTES } from "./store/capacity.ts";
import { type Output, OUTPUTS } from "./present/outputs.ts";
import {
  DEFAULT_SCREEN,
  DEFAULT_SEGMENT,
  digitsProblem,
  screenProblem,
  SEGMENT_KINDS,
  type SegmentKind,
} from "./present/geometry.ts";

/** Where the config is read when neither `--config` nor `LINKD_CONFIG` is given. */
export const DEFAULT_CONFIG_PATH = "/etc/linkd/linkd.json";

/** Largest config file `loadConfig` reads. */
export const MAX_CONFIG_BYTES = 1 << 20;

/** Most scopes one list may name. */
export const MAX_SCOPES = 32;

export interface FlashConfig extends FlashGeometry {
  /** Absolute path of the flash partition (an MTD device or a regular file emulating one). */
  readonly path: string;
}

export interface KeysConfig {
  /** Absolute path of the one-time-programmable key store. */
  readonly otpPath: string;
}

export interface AuthConfig {
  readonly dialect: Dialect;
  readonly codepairUrl: string;
  readonly tokenUrl: string;
  readonly scopes: string[];
  readonly fallbackScopes: string[];
  /** Present only when the file names it. */
  readonly region?: Region;
}

export interface BusConfig {
  readonly url: string;
  readonly username: string;
  /** Absolute path of the file holding the broker password. */
  readonly passwordFile: string;
  /** Topic prefix `P` of CONTRACT.md section 4: one or more topic levels, no wildcards. */
  readonly prefix: string;
}

export interface DisplayConfig {
  readonly outputs: Output[];
  /** BCP 47 language tag for spoken prompts. */
  readonly lang: string;
  /** The LED segment display: digits and segments a digit (`P/segment` carries both). */
  readonly segment: { readonly digits: number; readonly kind: SegmentKind };
  /** The screen of `P/display`, in pixels. */
  readonly screen: { readonly width: number; readonly height: number };
}

export interface Config {
  readonly flash: FlashConfig;
  readonly keys: KeysConfig;
  readonly auth: AuthConfig;
  readonly bus: BusConfig;
  readonly display: DisplayConfig;
}

/** A fresh copy of the defaults (the contract's example values plus the extensions'). */
export function defaultConfig(): Config {
  return {
    flash: { path: "/dev/mtd3", ...DEFAULT_GEOMETRY },
    keys: { otpPath: "/sys/firmware/linkd/otp" },
    auth: {
      dialect: "lwa",
      ...lwaUrls("na"),
      scopes: ["alexa:all"],
      fallbackScopes: ["alexa:all"],
    },
    bus: {
      url: "mqtt://127.0.0.1:1883",
      username: "linkd",
      passwordFile: "/etc/linkd/bus.pass",
      prefix: "linkd",
    },
    display: {
      outputs: [...OUTPUTS],
      lang: "en-US",
      segment: { ...DEFAULT_SEGMENT },
      screen: { ...DEFAULT_SCREEN },
    },
  };
}

/** `--config`, then `LINKD_CONFIG`, then `/etc/linkd/linkd.json` (empty values count as unset). */
export function configPath(
  flag: string | undefined,
  env: (name: string) => string | undefined,
): string {
  if (flag !== undefined && flag !== "") return flag;
  const fromEnv = env("LINKD_CONFIG");
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return DEFAULT_CONFIG_PATH;
}

/**
 * Reads and parses the config file at `path`. Only a regular file is opened (a FIFO, socket or
 * device is refused before it can block; see files.ts), and at most MAX_CONFIG_BYTES + 1 bytes
 * are read, whatever size the file claims.
 */
export function loadConfig(path: string): Config {
  const bytes = readRegularFile(
    path,
    MAX_CONFIG_BYTES + 1,
    (why, cause) =>
      new LinkdError(Code.CONFIG, `Cannot load config ${path}: ${oneLine(why)}`, { cause }),
  );
  if (bytes === null) {
    throw new LinkdError(
      Code.CONFIG_MISSING,
      `Cannot load config ${path}: file not found; pass --config FILE or set LINKD_CONFIG`,
    );
  }
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw problem(path, `the file is too large: more than ${MAX_CONFIG_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw new LinkdError(Code.CONFIG, `Cannot read config ${path}: not valid UTF-8`, { cause: e });
  }
  return parseConfig(text, path);
}

/**
 * Parses and checks config text. `source` is the file's path: it names the file in messages and
 * relative paths in the config are resolved against its folder.
 */
export function parseConfig(text: string, source: string): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
  } catch (e) {
    const detail = clip(oneLine(e instanceof Error ? e.message : String(e)), 80);
    throw new LinkdError(Code.CONFIG, `Cannot read config ${source}: not valid JSON (${detail})`, {
      cause: e,
    });
  }
  if (!isObject(raw)) {
    throw problem(source, `the top level must be an object, got ${describeValue(raw)}`);
  }
  const r = new Reader(source, dirname(source));
  const d = defaultConfig();
  r.keys(raw, "", ["flash", "keys", "auth", "bus", "display"]);

  const f = r.section(raw, "flash", ["path", "size", "eraseSize", "pageSize", "writeSize"]);
  const flash: FlashConfig = {
    path: r.path(f, "flash.path") ?? d.flash.path,
    size: r.positiveInt(f, "flash.size") ?? d.flash.size,
    eraseSize: r.positiveInt(f, "flash.eraseSize") ?? d.flash.eraseSize,
    pageSize: r.positiveInt(f, "flash.pageSize") ?? d.flash.pageSize,
    writeSize: r.positiveInt(f, "flash.writeSize") ?? d.flash.writeSize,
  };
  const geo = geometryProblem(flash);
  if (geo !== null) {
    const key = (["writeSize", "pageSize", "eraseSize"] as const).find((k) => geo.startsWith(k)) ??
      "size";
    r.fail(`flash.${key}`, `does not describe a NOR part: ${geo}, got ${flash[key]}`);
  }
  const room = capacityProblem(flash);
  if (room !== null) r.fail("flash", `is too small for linkd's records: ${room}`);

  const k = r.section(raw, "keys", ["otpPath"]);
  const keys: KeysConfig = { otpPath: r.path(k, "keys.otpPath") ?? d.keys.otpPath };

  const a = r.section(raw, "auth", [
    "dialect",
    "codepairUrl",
    "tokenUrl",
    "scopes",
    "fallbackScopes",
    "region",
  ]);
  const dialect = r.oneOf(a, "auth.dialect", DIALECT_NAMES) ?? d.auth.dialect;
  const region = r.oneOf(a, "auth.region", REGIONS);
  if (region !== undefined && dialect !== "lwa") {
    r.fail("auth.region", `applies only to dialect "lwa", not "${dialect}"`);
  }
  const preset = region === undefined ? d.auth : lwaUrls(region);
  const httpSchemes = ["http:", "https:"];
  const auth: AuthConfig = {
    dialect,
    codepairUrl: r.url(a, "auth.codepairUrl", httpSchemes) ?? preset.codepairUrl,
    tokenUrl: r.url(a, "auth.tokenUrl", httpSchemes) ?? preset.tokenUrl,
    scopes: r.scopes(a, "auth.scopes") ?? d.auth.scopes,
    fallbackScopes: r.scopes(a, "auth.fallbackScopes") ?? d.auth.fallbackScopes,
    ...(region === undefined ? {} : { region }),
  };

  const b = r.section(raw, "bus", ["url", "username", "passwordFile", "prefix"]);
  const bus: BusConfig = {
    url: r.url(b, "bus.url", ["mqtt:", "mqtts:", "ws:", "wss:"]) ?? d.bus.url,
    username: r.text(b, "bus.username") ?? d.bus.username,
    passwordFile: r.path(b, "bus.passwordFile") ?? d.bus.passwordFile,
    prefix: r.prefix(b, "bus.prefix") ?? d.bus.prefix,
  };

  const s = r.section(raw, "display", ["outputs", "lang", "segment", "screen"]);
  const sg = r.section(s, "display.segment", ["digits", "kind"]);
  const digits = r.positiveInt(sg, "display.segment.digits") ?? d.display.segment.digits;
  const badDigits = digitsProblem(digits);
  if (badDigits !== null) r.mustBe("display.segment.digits", badDigits, digits);
  const sc = r.section(s, "display.screen", ["width", "height"]);
  const screen = {
    width: r.positiveInt(sc, "display.screen.width") ?? d.display.screen.width,
    height: r.positiveInt(sc, "display.screen.height") ?? d.display.screen.height,
  };
  const badScreen = screenProblem(screen.width, screen.height);
  if (badScreen !== null) {
    const key = badScreen.startsWith("width") || badScreen.startsWith("height")
      ? `display.screen.${badScreen.slice(0, badScreen.indexOf(" "))}`
      : "display.screen";
    r.fail(key, `is not a screen linkd can draw on: ${badScreen}`);
  }
  const display: DisplayConfig = {
    outputs: r.outputs(s, "display.outputs") ?? d.display.outputs,
    lang: r.lang(s, "display.lang") ?? d.display.lang,
    segment: { digits, kind: r.kind(sg, "display.segment.kind") ?? d.display.segment.kind },
    screen,
  };

  return { flash, keys, auth, bus, display };
}

/** Why the store on a partition of geometry `g` cannot hold linkd's records (store/capacity.ts), or null. */
function capacityProblem(g: FlashGeometry): string | null {
  const short = capacityShortfall(g);
  if (short === null) return null;
  const have = short.maxPayload < MIN_RECORD_BYTES
    ? `hold records up to ${short.maxPayload} bytes, ${MIN_RECORD_BYTES} needed`
    : `hold ${Math.max(0, short.liveLimit)} bytes of records, ${MIN_LIVE_BYTES} needed`;
  const what = `${short.sectors} sectors of ${g.eraseSize} bytes ${have}`;
  return short.sectorsNeeded === null
    ? `${what}; use larger sectors (flash.eraseSize)`
    : `${what}; use at least ${short.sectorsNeeded} sectors (flash.size ${
      short.sectorsNeeded * g.eraseSize
    })`;
}

// ---------------------------------------------------------------------------------------------

const MAX_VALUE_CHARS = 60;
const MAX_PATH_CHARS = 4096;
const MAX_TEXT_CHARS = 256;
const MAX_SCOPE_CHARS = 256;
const LANG_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/;

function problem(source: string, what: string): LinkdError {
  return new LinkdError(Code.CONFIG, `Cannot load config ${source}: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function clip(s: string, max = MAX_VALUE_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/** A JSON-quoted string of at most 60 characters, ending in `..."` when cut. */
function quote(s: string): string {
  const whole = JSON.stringify(s);
  if (whole.length <= MAX_VALUE_CHARS) return whole;
  let t = s.slice(0, MAX_VALUE_CHARS);
  while (t.length > 0 && JSON.stringify(t).length + 3 > MAX_VALUE_CHARS) t = t.slice(0, -1);
  return `${JSON.stringify(t).slice(0, -1)}..."`;
}

/** How a value is shown in a message: never more than 60 characters. */
function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return quote(v);
  return clip(String(v));
}

/** Reads typed values out of parsed JSON; each check throws with the key's dotted path. */
class Reader {
  constructor(readonly source: string, readonly folder: string) {}

  fail(path: string, what: string): never {
    throw problem(this.source, `${quote(path)} ${what}`);
  }

  /** fail() with "must be `want`, got" and the value as it was given. */
  mustBe(path: string, want: string, v: unknown): never {
    return this.fail(path, `must be ${want}, got ${describeValue(v)}`);
  }

  /** Rejects the first key of `obj` that is not in `known`. */
  keys(obj: Record<string, unknown>, at: string, known: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) {
        const where = at === "" ? "the top level" : quote(at);
        throw problem(
          this.source,
          `unknown key ${quote(at === "" ? key : `${at}.${key}`)} (${where} takes ${
            known.join(", ")
          })`,
        );
      }
    }
  }

  /** The object at `name` (a dotted path: its last part is the key in `root`), or {} when absent. */
  section(root: Record<string, unknown>, name: string, known: readonly string[]) {
    const v = this.get(root, name);
    if (v === undefined) return {};
    if (!isObject(v)) return this.mustBe(name, "an object", v);
    this.keys(v, name, known);
    return v;
  }

  /** The value at `key`, or undefined when the key is absent (null is a value, of a wrong type). */
  private get(obj: Record<string, unknown>, key: string): unknown {
    const last = key.slice(key.lastIndexOf(".") + 1);
    return Object.hasOwn(obj, last) ? obj[last] : undefined;
  }

  positiveInt(obj: Record<string, unknown>, key: string): number | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      this.mustBe(key, "a positive integer", v);
    }
    return v;
  }

  text(obj: Record<string, unknown>, key: string, max = MAX_TEXT_CHARS): string | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") {
      this.mustBe(key, "a non-empty string", v);
    }
    if (v.length > max) this.fail(key, `must be at most ${max} characters, got ${v.length}`);
    if (hasControl(v)) {
      this.fail(key, `must not contain control characters, got ${describeValue(v)}`);
    }
    return v;
  }

  /** A file path; a relative one is resolved against the config file's folder. */
  path(obj: Record<string, unknown>, key: string): string | undefined {
    const v = this.text(obj, key, MAX_PATH_CHARS);
    return v === undefined ? undefined : resolve(this.folder, v);
  }

  oneOf<T extends string>(
    obj: Record<string, unknown>,
    key: string,
    allowed: readonly T[],
  ): T | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      this.mustBe(key, `one of ${allowed.map((x) => `"${x}"`).join(", ")}`, v);
    }
    return v as T;
  }

  url(obj: Record<string, unknown>, key: string, schemes: readonly string[]): string | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    const want = `a URL with scheme ${schemes.map((s) => s.slice(0, -1)).join(", ")}`;
    if (typeof v !== "string" || v === "") {
      this.mustBe(key, want, v);
    }
    // A URL is echoed without its user info: that part may hold a password.
    const shown = describeValue(v.replace(/\/\/[^/?#]*@/, "//...@"));
    if (v.length > 2048) this.fail(key, `must be at most 2048 characters, got ${v.length}`);
    if (/\s/.test(v) || hasControl(v)) {
      this.fail(key, `must not contain white space or control characters, got ${shown}`);
    }
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return this.fail(key, `must be ${want}, got ${shown}`);
    }
    if (!schemes.includes(u.protocol)) {
      this.fail(key, `must be ${want}, got scheme ${quote(u.protocol.slice(0, -1))}`);
    }
    if (u.hostname === "") this.fail(key, `must name a host, got ${shown}`);
    if (u.username !== "" || u.password !== "") {
      const hint = key.startsWith("bus.") ? " (use bus.username and bus.passwordFile)" : "";
      this.fail(key, `must not carry a user name or password${hint}, got ${shown}`);
    }
    return v;
  }

  private list(obj: Record<string, unknown>, key: string, what: string): unknown[] | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.mustBe(key, `an array of ${what}`, v);
    return v;
  }

  scopes(obj: Record<string, unknown>, key: string): string[] | undefined {
    const v = this.list(obj, key, "scopes");
    if (v === undefined) return undefined;
    if (v.length === 0) this.fail(key, "must name at least one scope, got an empty array");
    if (v.length > MAX_SCOPES) {
      this.fail(key, `must name at most ${MAX_SCOPES} scopes, got ${v.length}`);
    }
    const out: string[] = [];
    v.forEach((s, i) => {
      const at = `${key}[${i}]`;
      if (typeof s !== "string" || s === "") {
        this.mustBe(at, "a non-empty string", s);
      }
      if (s.length > MAX_SCOPE_CHARS) {
        this.fail(at, `must be at most ${MAX_SCOPE_CHARS} characters, got ${s.length}`);
      }
      if (!isScopeToken(s)) {
        this.mustBe(at, "one scope: printable ASCII without spaces, quotes or backslashes", s);
      }
      if (out.includes(s)) this.fail(at, `repeats scope ${describeValue(s)}`);
      out.push(s);
    });
    return out;
  }

  /** The bus's own rule (bus/topics.ts), worded here: one owner, so both always agree. */
  prefix(obj: Record<string, unknown>, key: string): string | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      this.mustBe(key, "a non-empty string", v);
    }
    const why = prefixProblem(v);
    if (why !== null) {
      this.mustBe(key, `an MQTT topic prefix: ${why}`, v);
    }
    return v;
  }

  outputs(obj: Record<string, unknown>, key: string): Output[] | undefined {
    const v = this.list(obj, key, "outputs");
    if (v === undefined) return undefined;
    const out: Output[] = [];
    v.forEach((o, i) => {
      const at = `${key}[${i}]`;
      if (typeof o !== "string" || !(OUTPUTS as readonly string[]).includes(o)) {
        this.mustBe(at, `one of ${OUTPUTS.map((x) => `"${x}"`).join(", ")}`, o);
      }
      if (out.includes(o as Output)) this.fail(at, `repeats output ${describeValue(o)}`);
      out.push(o as Output);
    });
    return out;
  }

  /** The segment kinds of present/geometry.ts: a number, 7 or 14. */
  kind(obj: Record<string, unknown>, key: string): SegmentKind | undefined {
    const v = this.get(obj, key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !(SEGMENT_KINDS as readonly number[]).includes(v)) {
      this.mustBe(key, `one of ${SEGMENT_KINDS.join(", ")}`, v);
    }
    return v as SegmentKind;
  }

  lang(obj: Record<string, unknown>, key: string): string | undefined {
    const v = this.text(obj, key, 35);
    if (v === undefined) return undefined;
    if (!LANG_TAG.test(v)) {
      this.mustBe(key, 'a BCP 47 language tag such as "en-US"', v);
    }
    return v;
  }
}
