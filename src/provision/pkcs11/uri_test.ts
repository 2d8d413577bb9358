import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, isLinkdError } from "../../errors.ts";
import { parsePkcs11Uri } from "./uri.ts";

const MOD = "module-path=/usr/lib/softhsm/libsofthsm2.so";

/** Parses `value`, expecting BAD_LINE_KEY; returns the one-line message. */
function refused(value: string): string {
  try {
    parsePkcs11Uri(value);
  } catch (e) {
    assert.ok(isLinkdError(e, Code.BAD_LINE_KEY), String(e));
    assert.not.match(e.message, /\n/);
    assert.match(e.message, /^Cannot use line key pkcs11:/);
    return e.message;
  }
  assert.unreachable(`expected ${value} to be refused`);
  return "";
}

test("parsePkcs11Uri() reads the line's URI: token, object, module-path, pin-source", () => {
  const u = parsePkcs11Uri(`pkcs11:token=line;object=line-key?${MOD}&pin-source=file:/etc/l.pin`);
  assert.equal(u, {
    display: "pkcs11:token=line;object=line-key",
    token: "line",
    object: "line-key",
    modulePath: "/usr/lib/softhsm/libsofthsm2.so",
    pinFile: "/etc/l.pin",
  });
  assert.is(parsePkcs11Uri(`pkcs11:object=k?${MOD}&pin-source=file:///p`).pinFile, "/p");
  assert.is(parsePkcs11Uri(`pkcs11:object=k?${MOD}&pin-source=/p`).pinFile, "/p");
  assert.is(parsePkcs11Uri(`pkcs11:object=k?${MOD}`).pinFile, undefined);
});

// RFC 7512 section 3's examples, with the module-path linkd needs added where absent.
test("parsePkcs11Uri() reads RFC 7512's examples", () => {
  const a = parsePkcs11Uri(
    `pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin&${MOD}`,
  );
  assert.is(a.token, "The Software PKCS#11 Softtoken");
  assert.is(a.manufacturer, "Snake Oil, Inc.");
  assert.is(a.model, "1.0");
  assert.is(a.object, "my-certificate");
  assert.equal(a.id, new Uint8Array([0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91]));
  assert.is(a.serial, "");
  assert.is(a.pinFile, "/etc/token_pin");

  const b = parsePkcs11Uri(
    "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
  );
  assert.is(b.object, "my-sign-key");
  assert.is(b.modulePath, "/mnt/libmypkcs11.so.1");

  const c = parsePkcs11Uri(
    `pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23;object=k?${MOD}`,
  );
  assert.is(c.libraryManufacturer, "Snake Oil, Inc.");
  assert.is(c.libraryDescription, "Soft Token Library");
  assert.equal(c.libraryVersion, [1, 23]);

  const d = parsePkcs11Uri(
    `pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ef%fe%0A;object=my-certificate?${MOD}`,
  );
  assert.is(d.token, "My token% created by Joe");
  assert.equal(d.libraryVersion, [3, 0]);
  assert.equal(d.id, new Uint8Array([1, 2, 3, 0xba, 0xdd, 0xef, 0xfe, 0x0a]));

  const e = parsePkcs11Uri(
    `pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate?${MOD}`,
  );
  assert.is(e.token, "A name with a substring %;");
  const f = parsePkcs11Uri(
    `pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=k?${MOD}`,
  );
  assert.is(f.token, "Name with a small A with acute: á");
  const g = parsePkcs11Uri(
    `pkcs11:slot-description=Sun%20Metaslot;slot-manufacturer=Sun;slot-id=18446744073709551615;object=k?${MOD}`,
  );
  assert.is(g.slotDescription, "Sun Metaslot");
  assert.is(g.slotManufacturer, "Sun");
  assert.is(g.slotId, 2n ** 64n - 1n);
});

test("parsePkcs11Uri() refuses RFC 7512's examples that would not name one signing key", () => {
  // the module by name, a public key, a certificate, a token without a key, a PIN in the URI
  assert.match(
    refused("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11"),
    /module-path/,
  );
  assert.match(refused(`pkcs11:object=my-pubkey;type=public?${MOD}`), /type=public .*type=private/);
  assert.match(refused(`pkcs11:object=c;type=cert?${MOD}`), /type=cert/);
  assert.match(refused(`pkcs11:token=t?${MOD}`), /names no key; add object=/);
  assert.match(refused("pkcs11:"), /module-path=/);
  const pin = refused(
    `pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.;object=k?${MOD}&pin-value=the-pin`,
  );
  assert.match(pin, /pin-value .* ps; .*pin-source=file:PATH$/);
  assert.not.match(pin, /the-pin/);
});

// RFC 7512 lets a consumer that does not understand an attribute match nothing: linkd says so.
test("parsePkcs11Uri() refuses unknown or vendor attributes, naming them", () => {
  assert.match(
    refused(`pkcs11:token=my-token;object=k;vendor-aaa=value-a?${MOD}`),
    /unknown path attribute vendor-aaa; linkd knows id, library-description/,
  );
  assert.match(
    refused(`pkcs11:object=k?${MOD}&vendor-bbb=value-b`),
    /unknown query attribute vendor-bbb; linkd knows module-path, pin-source$/,
  );
});

test("parsePkcs11Uri() refuses malformed and repeated attributes, escapes and values", () => {
  assert.match(refused(`pkcs11:object=a;object=b?${MOD}`), /path attribute object is given twice/);
  assert.match(refused(`pkcs11:object=a?${MOD}&${MOD}`), /module-path is given twice/);
  assert.match(refused(`pkcs11:object=a%2?${MOD}`), /object has a malformed %-escape/);
  assert.match(refused(`pkcs11:object=a%zz?${MOD}`), /malformed %-escape/);
  assert.match(refused(`pkcs11:object=a b?${MOD}`), /object holds " ", which must be %-escaped/);
  assert.match(refused(`pkcs11:object=%ff?${MOD}`), /object is not UTF-8 text/);
  assert.match(refused(`pkcs11:object?${MOD}`), /attribute "object" is not NAME=VALUE/);
  assert.match(refused(`pkcs11:Object=k?${MOD}`), /attribute name "Object" is malformed/);
  assert.match(refused(`pkcs11:object=k;library-version=1.x?${MOD}`), /MAJOR.MINOR, got 1.x/);
  assert.match(refused(`pkcs11:object=k;slot-id=-1?${MOD}`), /slot-id must be a decimal/);
  assert.match(refused(`pkcs11:object=k;slot-id=18446744073709551616?${MOD}`), /slot-id/);
  assert.match(refused("pkcs11:object=k?module-path=lib.so"), /absolute path, got lib.so/);
  assert.match(refused(`pkcs11:object=k?${MOD}&pin-source=env:PIN`), /file:\/ABSOLUTE\/PATH/);
  assert.match(refused(`pkcs11:object=k?${MOD}&pin-source=|/bin/pin`), /file:\/ABSOLUTE/);
  assert.match(refused(`pkcs11:object=k?${MOD}&pin-source=file://host/p`), /file:\/ABSOLUTE/);
});

test("parsePkcs11Uri() refuses a value that is not a pkcs11: URI", () => {
  assert.match(refused("pkcs11"), /does not start with pkcs11:/);
});
test.run();
