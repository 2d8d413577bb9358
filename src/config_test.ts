import { test } from "uvu";
import * as assert from "uvu/assert";
import { failsWith } from "../test/support/assert.ts";
import { Code, Exit, LinkdError } from "./errors.ts";
import {
  type Config,
  configPath,
  DEFAULT_CONFIG_PATH,
  defaultConfig,
  loadConfig,
  parseConfig,
} from "./config.ts";
import { DIALECT_NAMES, isScopeToken, lwaUrls, REGIONS } from "./auth/dialect.ts";
import { OUTPUTS } from "./present/outputs.ts";
import { MAX_DIGITS, MIN_DIGITS, MIN_SCREENS } from "./present/geometry.ts";
import { capacityShortfall } from "./store/capacity.ts";
import { DEFAULT_GEOMETRY } from "./flash/driver.ts";

const SRC = "/etc/linkd/linkd.json";

/** Parses `obj` and expects Code.CONFIG naming `path`; returns the message. */
function rejects(obj: unknown, path: string): string {
  const msg = failsWith(() => parseConfig(JSON.stringify(obj), SRC), Code.CONFIG);
  assert.ok(msg.startsWith(`Cannot load config ${SRC}: `), msg);
  assert.ok(msg.includes(`"${path}"`), `expected "${path}" in: ${msg}`);
  return msg;
}

const EXPECTED_DEFAULTS: Config = {
  flash: { path: "/dev/mtd3", size: 65536, eraseSize: 4096, pageSize: 256, writeSize: 4 },
  keys: { otpPath: "/sys/firmware/linkd/otp" },
  auth: {
    dialect: "lwa",
    codepairUrl: "https://api.amazon.com/auth/O2/create/codepair",
    tokenUrl: "https://api.amazon.com/auth/O2/token",
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
    outputs: ["voice", "segment", "screen", "terminal"],
    lang: "en-US",
    segment: { digits: 4, kind: 7 },
    screen: { width: 128, height: 64 },
  },
};

test("parseConfig() of {} gives the contract's defaults", () => {
  assert.equal(parseConfig("{}", SRC), EXPECTED_DEFAULTS);
  assert.equal(defaultConfig(), EXPECTED_DEFAULTS);
  assert.not.ok("region" in parseConfig("{}", SRC).auth);
});

test("parseConfig() of empty sections gives the defaults", () => {
  const text = '{"flash":{},"keys":{},"auth":{},"bus":{},"display":{}}';
  assert.equal(parseConfig(text, SRC), EXPECTED_DEFAULTS);
});

test("parseConfig() of the contract's example equals the defaults", () => {
  const example = `{
  "flash":   { "path": "/dev/mtd3", "size": 65536, "eraseSize": 4096, "pageSize": 256 },
  "keys":    { "otpPath": "/sys/firmware/linkd/otp" },
  "auth":    { "dialect": "lwa",
               "codepairUrl": "https://api.amazon.com/auth/O2/create/codepair",
               "tokenUrl": "https://api.amazon.com/auth/O2/token",
               "scopes": ["alexa:all"],
               "fallbackScopes": ["alexa:all"] },
  "bus":     { "url": "mqtt://127.0.0.1:1883", "username": "linkd", "passwordFile": "/etc/linkd/bus.pass",
               "prefix": "linkd" },
  "display": { "outputs": ["voice", "segment", "screen", "terminal"] }
}`;
  assert.equal(parseConfig(example, SRC), EXPECTED_DEFAULTS);
});

test("defaultConfig() returns a fresh copy each time", () => {
  const a = defaultConfig();
  a.auth.scopes.push("profile");
  a.display.outputs.pop();
  assert.equal(defaultConfig(), EXPECTED_DEFAULTS);
  assert.equal(parseConfig("{}", SRC), EXPECTED_DEFAULTS);
});

test("parseConfig() reads a full valid config with every extension", () => {
  const full = {
    flash: { path: "/dev/mtd5", size: 1 << 20, eraseSize: 65536, pageSize: 512, writeSize: 1 },
    keys: { otpPath: "/var/lib/linkd/otp.bin" },
    auth: {
      dialect: "rfc8628",
      codepairUrl: "http://127.0.0.1:8080/device_authorization",
      tokenUrl: "https://auth.example.com/oauth/token",
      scopes: ["alexa:all", "profile:user_id"],
      fallbackScopes: ["profile"],
    },
    bus: {
      url: "wss://broker.local:8884/mqtt",
      username: "speaker",
      passwordFile: "/run/secrets/bus",
      prefix: "home/kitchen/linkd",
    },
    display: {
      outputs: ["terminal", "voice"],
      lang: "de-DE",
      segment: { digits: 8, kind: 14 },
      screen: { width: 296, height: 128 },
    },
  };
  assert.equal(parseConfig(JSON.stringify(full), SRC), full);
});

test("parseConfig() accepts each bus scheme and both auth schemes", () => {
  for (const url of ["mqtt://h", "mqtts://h:8883", "ws://h/mqtt", "wss://h"]) {
    assert.is(parseConfig(JSON.stringify({ bus: { url } }), SRC).bus.url, url);
  }
  for (const url of ["http://localhost:9000/token", "https://x.example/t"]) {
    assert.is(parseConfig(JSON.stringify({ auth: { tokenUrl: url } }), SRC).auth.tokenUrl, url);
  }
});

test("parseConfig() region preset picks the LWA host when URLs are not given", () => {
  const hosts = { na: "api.amazon.com", eu: "api.amazon.co.uk", fe: "api.amazon.co.jp" };
  for (const [region, host] of Object.entries(hosts)) {
    const c = parseConfig(JSON.stringify({ auth: { region } }), SRC);
    assert.is(c.auth.region, region);
    assert.is(c.auth.codepairUrl, `https://${host}/auth/O2/create/codepair`);
    assert.is(c.auth.tokenUrl, `https://${host}/auth/O2/token`);
  }
  const given = parseConfig(
    JSON.stringify({ auth: { region: "eu", tokenUrl: "https://t.example/token" } }),
    SRC,
  );
  assert.is(given.auth.tokenUrl, "https://t.example/token");
  assert.is(given.auth.codepairUrl, "https://api.amazon.co.uk/auth/O2/create/codepair");
});

test("parseConfig() resolves relative paths against the config file's folder", () => {
  const text = JSON.stringify({
    flash: { path: "flash.img" },
    keys: { otpPath: "../otp/otp.bin" },
    bus: { passwordFile: "./secrets/bus.pass" },
  });
  const c = parseConfig(text, "/opt/dev/conf/linkd.json");
  assert.is(c.flash.path, "/opt/dev/conf/flash.img");
  assert.is(c.keys.otpPath, "/opt/dev/otp/otp.bin");
  assert.is(c.bus.passwordFile, "/opt/dev/conf/secrets/bus.pass");
  const abs = parseConfig(JSON.stringify({ flash: { path: "/dev/mtd1" } }), "/x/y.json");
  assert.is(abs.flash.path, "/dev/mtd1");
  const cwdRelative = parseConfig(JSON.stringify({ flash: { path: "f.img" } }), "c/linkd.json");
  assert.is(cwdRelative.flash.path, `${Deno.cwd()}/c/f.img`);
});

test("parseConfig() rejects text that is not JSON", () => {
  for (const text of ["", "{", "{'flash': 1}", '{"flash": {}} x', "nul"]) {
    const msg = failsWith(() => parseConfig(text, SRC), Code.CONFIG);
    assert.ok(msg.startsWith(`Cannot read config ${SRC}: not valid JSON (`), msg);
    assert.ok(msg.endsWith(")"), msg);
  }
});

test("parseConfig() accepts a leading byte order mark", () => {
  assert.equal(parseConfig('\uFEFF{"bus":{"prefix":"p"}}', SRC).bus.prefix, "p");
});

test("parseConfig() rejects a top level that is not an object", () => {
  for (const text of ["[]", "null", "42", '"x"', "true"]) {
    const msg = failsWith(() => parseConfig(text, SRC), Code.CONFIG);
    assert.ok(msg.includes("the top level must be an object"), msg);
  }
});

test("parseConfig() rejects unknown keys with their dotted path", () => {
  rejects({ flsh: {} }, "flsh");
  rejects({ flash: { sise: 1 } }, "flash.sise");
  rejects({ keys: { otp: "/x" } }, "keys.otp");
  rejects({ auth: { clientId: "amzn1.x" } }, "auth.clientId");
  rejects({ bus: { password: "hunter2" } }, "bus.password");
  rejects({ display: { output: [] } }, "display.output");
  rejects({ display: { segment: { digit: 4 } } }, "display.segment.digit");
  rejects({ display: { screen: { w: 4 } } }, "display.screen.w");
  rejects({ flash: { constructor: 1 } }, "flash.constructor");
  const msg = rejects({ flash: { sise: 1 } }, "flash.sise");
  assert.ok(msg.includes("unknown key"), msg);
  assert.ok(msg.includes("path, size, eraseSize, pageSize, writeSize"), msg);
  // JSON.parse keeps "__proto__" as an own key
  rejects(JSON.parse('{"__proto__": {}}'), "__proto__");
});

test("parseConfig() rejects a section that is not an object", () => {
  for (const bad of [null, [], "x", 1, true]) {
    for (const section of ["flash", "keys", "auth", "bus", "display"]) {
      const msg = rejects({ [section]: bad }, section);
      assert.ok(msg.includes("must be an object"), msg);
    }
  }
});

test("parseConfig() names the key of a wrong type, in the contract's wording", () => {
  const msg = rejects({ flash: { size: "64k" } }, "flash.size");
  assert.is(
    msg,
    'Cannot load config /etc/linkd/linkd.json: "flash.size" must be a positive integer, got "64k"',
  );
  for (const key of ["size", "eraseSize", "pageSize", "writeSize"]) {
    for (const bad of ["1", null, 1.5, 0, -4096, true, [], {}, 2 ** 60]) {
      rejects({ flash: { [key]: bad } }, `flash.${key}`);
    }
  }
  for (const bad of [1, null, "", [], {}, false]) {
    rejects({ flash: { path: bad } }, "flash.path");
    rejects({ keys: { otpPath: bad } }, "keys.otpPath");
    rejects({ bus: { passwordFile: bad } }, "bus.passwordFile");
    rejects({ bus: { username: bad } }, "bus.username");
    rejects({ bus: { prefix: bad } }, "bus.prefix");
    rejects({ bus: { url: bad } }, "bus.url");
    rejects({ auth: { codepairUrl: bad } }, "auth.codepairUrl");
    rejects({ auth: { tokenUrl: bad } }, "auth.tokenUrl");
    rejects({ auth: { dialect: bad } }, "auth.dialect");
    rejects({ auth: { region: bad } }, "auth.region");
    rejects({ display: { lang: bad } }, "display.lang");
  }
  for (const bad of ["alexa:all", null, 1, {}, true]) {
    rejects({ auth: { scopes: bad } }, "auth.scopes");
    rejects({ auth: { fallbackScopes: bad } }, "auth.fallbackScopes");
    rejects({ display: { outputs: bad } }, "display.outputs");
  }
});

test("parseConfig() checks the flash geometry and names the key at fault", () => {
  rejects({ flash: { writeSize: 3 } }, "flash.writeSize");
  rejects({ flash: { writeSize: 128 } }, "flash.writeSize");
  rejects({ flash: { pageSize: 100 } }, "flash.pageSize");
  rejects({ flash: { pageSize: 2, writeSize: 4 } }, "flash.pageSize");
  rejects({ flash: { eraseSize: 3000 } }, "flash.eraseSize");
  rejects({ flash: { eraseSize: 128 } }, "flash.eraseSize");
  rejects({ flash: { eraseSize: 1 << 21, size: 1 << 23 } }, "flash.eraseSize");
  rejects({ flash: { size: 65537 } }, "flash.size");
  rejects({ flash: { size: 8192 } }, "flash.size");
  const msg = rejects({ flash: { size: 1 << 29 } }, "flash.size");
  assert.ok(msg.includes("got 536870912"), msg);
  const ok = parseConfig(JSON.stringify({ flash: { size: 53248 } }), SRC);
  assert.is(ok.flash.size, 53248);
});

test("parseConfig() refuses a flash too small for linkd's records, naming the fix", () => {
  // 4 sectors pass the NOR checks, but the store on them holds records of 987 bytes at most.
  assert.is(
    rejects({ flash: { size: 16384 } }, "flash"),
    `Cannot load config ${SRC}: "flash" is too small for linkd's records: 4 sectors of 4096 bytes hold records up to 987 bytes, 9216 needed; use at least 13 sectors (flash.size 53248)`,
  );
  // 12 sectors are one short; 13 are the fewest that hold a 9216-byte record.
  assert.ok(rejects({ flash: { size: 12 * 4096 } }, "flash").includes("use at least 13 sectors"));
  assert.is(parseConfig(JSON.stringify({ flash: { size: 13 * 4096 } }), SRC).flash.size, 53248);
  // Small sectors need more of them; sectors too small for the store cannot be helped by more.
  const small = { eraseSize: 256, pageSize: 256, size: 64 * 256 };
  assert.ok(rejects({ flash: small }, "flash").includes("use at least 160 sectors"));
  assert.is(
    parseConfig(JSON.stringify({ flash: { ...small, size: 160 * 256 } }), SRC).flash.size,
    40960,
  );
  const tiny = { eraseSize: 64, pageSize: 64, size: 64 * 1024 };
  assert.ok(rejects({ flash: tiny }, "flash").includes("use larger sectors"));
  for (const obj of [{ flash: { size: 16384 } }, { flash: tiny }]) {
    try {
      parseConfig(JSON.stringify(obj), SRC);
    } catch (e) {
      assert.is((e as LinkdError).exitCode, Exit.CONFIG);
    }
  }
});

test("parseConfig() asks each rule's owner: dialects, regions, scopes, outputs, store capacity", () => {
  const parse = (obj: unknown) => parseConfig(JSON.stringify(obj), SRC);
  for (const dialect of DIALECT_NAMES) {
    assert.is(parse({ auth: { dialect } }).auth.dialect, dialect);
  }
  for (const region of REGIONS) {
    const { codepairUrl, tokenUrl } = parse({ auth: { region } }).auth;
    assert.equal({ codepairUrl, tokenUrl }, lwaUrls(region));
  }
  assert.equal(defaultConfig().display.outputs, OUTPUTS);
  for (const o of OUTPUTS) assert.equal(parse({ display: { outputs: [o] } }).display.outputs, [o]);
  for (const s of ["alexa:all", "!#[]~", "a b", 'a"b', "a\\b", "a\u007fb", "é", "x\u0085"]) {
    let ok = true;
    try {
      parse({ auth: { scopes: [s] } });
    } catch {
      ok = false;
    }
    assert.is(ok, isScopeToken(s), JSON.stringify(s));
  }
  for (const sectors of [4, 8, 12, 13, 16]) {
    const flash = { ...DEFAULT_GEOMETRY, size: sectors * DEFAULT_GEOMETRY.eraseSize };
    let ok = true;
    try {
      parse({ flash });
    } catch {
      ok = false;
    }
    assert.is(ok, capacityShortfall(flash) === null, `${sectors} sectors`);
  }
});

test("parseConfig() checks auth values", () => {
  rejects({ auth: { dialect: "LWA" } }, "auth.dialect");
  rejects({ auth: { dialect: "oauth2" } }, "auth.dialect");
  rejects({ auth: { region: "us" } }, "auth.region");
  rejects({ auth: { region: "eu", dialect: "rfc8628" } }, "auth.region");
  for (const url of ["ftp://x/y", "mqtt://h", "not a url", "api.amazon.com/auth", "https://"]) {
    rejects({ auth: { codepairUrl: url } }, "auth.codepairUrl");
    rejects({ auth: { tokenUrl: url } }, "auth.tokenUrl");
  }
  rejects({ auth: { tokenUrl: " https://x/t" } }, "auth.tokenUrl");
  const msg = rejects({ auth: { tokenUrl: "https://user:s3cret@x/t" } }, "auth.tokenUrl");
  assert.not.ok(msg.includes("s3cret"), msg);
});

test("parseConfig() checks scope lists", () => {
  rejects({ auth: { scopes: [] } }, "auth.scopes");
  rejects({ auth: { fallbackScopes: [] } }, "auth.fallbackScopes");
  const many = Array.from({ length: 33 }, (_, i) => `s${i}`);
  rejects({ auth: { scopes: many } }, "auth.scopes");
  assert.is(
    parseConfig(JSON.stringify({ auth: { scopes: many.slice(0, 32) } }), SRC).auth.scopes.length,
    32,
  );
  rejects({ auth: { scopes: ["alexa:all", ""] } }, "auth.scopes[1]");
  rejects({ auth: { scopes: ["alexa:all profile"] } }, "auth.scopes[0]");
  rejects({ auth: { scopes: ["a", "b\t"] } }, "auth.scopes[1]");
  rejects({ auth: { scopes: ["a", 7] } }, "auth.scopes[1]");
  rejects({ auth: { scopes: [null] } }, "auth.scopes[0]");
  rejects({ auth: { scopes: ['a"b'] } }, "auth.scopes[0]");
  rejects({ auth: { scopes: ["a", "a"] } }, "auth.scopes[1]");
  rejects({ auth: { fallbackScopes: ["ok", "x y"] } }, "auth.fallbackScopes[1]");
  rejects({ auth: { scopes: ["x".repeat(300)] } }, "auth.scopes[0]");
});

test("parseConfig() checks bus values", () => {
  for (const url of ["http://h", "https://h", "tcp://h:1883", "mqtt:", "127.0.0.1:1883"]) {
    rejects({ bus: { url } }, "bus.url");
  }
  const msg = rejects({ bus: { url: "mqtt://linkd:hunter2@127.0.0.1" } }, "bus.url");
  assert.not.ok(msg.includes("hunter2"), msg);
  for (const prefix of ["a/+/b", "a/#", "#", "/linkd", "linkd/", "a//b", "$SYS/x", "a\u0000b"]) {
    rejects({ bus: { prefix } }, "bus.prefix");
  }
  rejects({ bus: { prefix: "p".repeat(201) } }, "bus.prefix");
  rejects({ bus: { username: "a\nb" } }, "bus.username");
  rejects({ bus: { passwordFile: "/etc/x\u0000y" } }, "bus.passwordFile");
  assert.is(parseConfig('{"bus":{"prefix":"a/b-c/d_e"}}', SRC).bus.prefix, "a/b-c/d_e");
});

test("parseConfig() checks display values", () => {
  rejects({ display: { outputs: ["voice", "led"] } }, "display.outputs[1]");
  rejects({ display: { outputs: ["voice", "voice"] } }, "display.outputs[1]");
  rejects({ display: { outputs: [1] } }, "display.outputs[0]");
  rejects({ display: { outputs: ["Voice"] } }, "display.outputs[0]");
  rejects({ display: { lang: "english" } }, "display.lang");
  rejects({ display: { lang: "en_US" } }, "display.lang");
  assert.equal(parseConfig('{"display":{"outputs":[]}}', SRC).display.outputs, []);
  assert.is(parseConfig('{"display":{"lang":"ja-JP"}}', SRC).display.lang, "ja-JP");
});

test("parseConfig() reads the display geometry: segment digits and kind, screen size", () => {
  const parse = (display: unknown) => parseConfig(JSON.stringify({ display }), SRC).display;
  assert.equal(parse({ segment: { kind: 14 } }).segment, { digits: 4, kind: 14 });
  assert.equal(parse({ segment: { digits: 6 } }).segment, { digits: 6, kind: 7 });
  assert.equal(parse({ screen: { height: 128 } }).screen, { width: 128, height: 128 });
  for (const d of [MIN_DIGITS, MAX_DIGITS]) {
    assert.is(parse({ segment: { digits: d } }).segment.digits, d);
  }
  for (const m of MIN_SCREENS) assert.equal(parse({ screen: m }).screen, m);
  assert.equal(parse({ screen: { width: 1024, height: 1024 } }).screen, {
    width: 1024,
    height: 1024,
  });
});

test("parseConfig() refuses display geometry present/geometry.ts does not allow, naming the key", () => {
  for (const bad of [null, [], "x", 4]) {
    assert.ok(rejects({ display: { segment: bad } }, "display.segment").includes("an object"));
    assert.ok(rejects({ display: { screen: bad } }, "display.screen").includes("an object"));
  }
  for (const digits of [0, -1, 1.5, "4", MAX_DIGITS + 1]) {
    rejects({ display: { segment: { digits } } }, "display.segment.digits");
  }
  const kinds = rejects({ display: { segment: { kind: 16 } } }, "display.segment.kind");
  assert.ok(kinds.includes("must be one of 7, 14, got 16"), kinds);
  for (const kind of ["7", 8, 0, null, 7.5]) {
    rejects({ display: { segment: { kind } } }, "display.segment.kind");
  }
  for (const width of [0, "128", 1025, 12.5]) {
    rejects({ display: { screen: { width } } }, "display.screen.width");
  }
  rejects({ display: { screen: { height: 2048 } } }, "display.screen.height");
  for (const m of MIN_SCREENS) {
    rejects({ display: { screen: { ...m, width: m.width - 1 } } }, "display.screen");
    rejects({ display: { screen: { ...m, height: m.height - 1 } } }, "display.screen");
  }
  const small = rejects({ display: { screen: { width: 64, height: 48 } } }, "display.screen");
  assert.ok(small.includes("64x48 is too small for the code beside a QR code"), small);
  assert.ok(small.includes("use at least 33x64 or 80x33"), small);
});

test("parseConfig() never echoes more than 60 characters of a value or key", () => {
  const long = "x".repeat(500);
  const cases: [unknown, string][] = [
    [{ flash: { size: long } }, long],
    [{ auth: { dialect: long } }, long],
    [{ auth: { scopes: [`${long} y`] } }, long],
    [{ bus: { prefix: `#${long}` } }, long],
    [{ bus: { url: `mqtt://${long}@` } }, long],
    [{ display: { outputs: [long] } }, long],
    [{ flash: { [long]: 1 } }, long],
    [{ auth: { codepairUrl: `ftp:${"\\u0001".repeat(200)}` } }, long],
  ];
  for (const [obj] of cases) {
    const msg = failsWith(() => parseConfig(JSON.stringify(obj), SRC), Code.CONFIG);
    const quoted = msg.match(/"[^"]*"/g) ?? [];
    for (const q of quoted) assert.ok(q.length <= 60, `too long (${q.length}): ${msg}`);
    assert.ok(msg.length < 300, `message too long: ${msg.length}`);
  }
  const msg = failsWith(
    () => parseConfig(JSON.stringify({ flash: { path: "y".repeat(5000) } }), SRC),
    Code.CONFIG,
  );
  assert.ok(msg.includes('"flash.path"'), msg);
  assert.ok(msg.length < 200, msg);
});

test("parseConfig() errors exit 78", () => {
  try {
    parseConfig('{"flash":{"size":"64k"}}', SRC);
    assert.unreachable();
  } catch (e) {
    assert.is((e as LinkdError).exitCode, Exit.CONFIG);
  }
});

test("configPath() prefers --config, then LINKD_CONFIG, then the default", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.is(configPath("/a.json", env({ LINKD_CONFIG: "/b.json" })), "/a.json");
  assert.is(configPath(undefined, env({ LINKD_CONFIG: "/b.json" })), "/b.json");
  assert.is(configPath(undefined, env({})), "/etc/linkd/linkd.json");
  assert.is(DEFAULT_CONFIG_PATH, "/etc/linkd/linkd.json");
  assert.is(configPath("", env({ LINKD_CONFIG: "/b.json" })), "/b.json");
  assert.is(configPath(undefined, env({ LINKD_CONFIG: "" })), "/etc/linkd/linkd.json");
  assert.is(configPath(undefined, env({ OTHER: "/c.json" })), "/etc/linkd/linkd.json");
  const asked: string[] = [];
  configPath(undefined, (n) => {
    asked.push(n);
    return undefined;
  });
  assert.equal(asked, ["LINKD_CONFIG"]);
});

test("loadConfig() reads a file and resolves paths against its folder", () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-config-" });
  try {
    const path = `${dir}/linkd.json`;
    Deno.writeTextFileSync(path, '{"flash":{"path":"nor.img"},"bus":{"prefix":"dev"}}');
    const c = loadConfig(path);
    assert.is(c.flash.path, `${dir}/nor.img`);
    assert.is(c.bus.prefix, "dev");
    assert.is(c.auth.tokenUrl, "https://api.amazon.com/auth/O2/token");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("loadConfig() reports a missing file as CONFIG_MISSING with the contract's hint", () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-config-" });
  try {
    const path = `${dir}/nope.json`;
    const msg = failsWith(() => loadConfig(path), Code.CONFIG_MISSING);
    assert.is(
      msg,
      `Cannot load config ${path}: file not found; pass --config FILE or set LINKD_CONFIG`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("loadConfig() reports unreadable or bad files as CONFIG", () => {
  const dir = Deno.makeTempDirSync({ prefix: "linkd-config-" });
  try {
    let msg = failsWith(() => loadConfig(dir), Code.CONFIG);
    assert.ok(msg.startsWith(`Cannot load config ${dir}: `), msg);

    const bad = `${dir}/bad.json`;
    Deno.writeTextFileSync(bad, '{"flash": ');
    msg = failsWith(() => loadConfig(bad), Code.CONFIG);
    assert.ok(msg.startsWith(`Cannot read config ${bad}: not valid JSON`), msg);

    const latin1 = `${dir}/latin1.json`;
    Deno.writeFileSync(latin1, new Uint8Array([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]));
    msg = failsWith(() => loadConfig(latin1), Code.CONFIG);
    assert.ok(msg.includes("UTF-8"), msg);

    const big = `${dir}/big.json`;
    Deno.writeTextFileSync(big, `{"x":"${"a".repeat(1 << 20)}"}`);
    msg = failsWith(() => loadConfig(big), Code.CONFIG);
    assert.ok(msg.includes("bytes"), msg);

    // A device claims size 0 and never ends: it is not opened at all, so it cannot hang linkd.
    msg = failsWith(() => loadConfig("/dev/zero"), Code.CONFIG);
    assert.is(msg, "Cannot load config /dev/zero: it is a character device, not a regular file");

    const unknown = `${dir}/unknown.json`;
    Deno.writeTextFileSync(unknown, '{"bus":{"passwd":"x"}}');
    msg = failsWith(() => loadConfig(unknown), Code.CONFIG);
    assert.ok(msg.includes('"bus.passwd"'), msg);

    if (Deno.uid() !== 0) {
      const locked = `${dir}/locked.json`;
      Deno.writeTextFileSync(locked, "{}");
      Deno.chmodSync(locked, 0o000);
      msg = failsWith(() => loadConfig(locked), Code.CONFIG);
      assert.ok(msg.includes("permission denied"), msg);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test.run();
