/**
 * The line key in a real HSM (issue 14): SoftHSM2 with an Ed25519 key generated inside it by
 * OpenSC's pkcs11-tool, opened by `openLineSigner` with a PKCS #11 URI; signatures checked by
 * tweetnacl and by python3-nacl, refusals checked for their code and for the PIN.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { failsWith as refusal } from "./support/assert.ts";
import nacl from "tweetnacl";
import { toHex } from "../src/bytes.ts";
import { Code, type ErrorCode } from "../src/errors.ts";
import { openLineSigner } from "../src/provision/line_signer.ts";
import { signIdentity, verifyLineSignature } from "../src/provision/line_signature.ts";
import { python, pythonHas, whenPython } from "./support/python.ts";
import {
  KEY_LABEL,
  type SoftHsm,
  SOFTHSM_MODULE,
  startSoftHsm,
  USER_PIN,
  whenSoftHsm,
} from "./support/softhsm.ts";

const hsmTest = whenSoftHsm(test);
let hsm: SoftHsm | undefined;
test.before(async () => {
  if (hsmTest === test) hsm = await startSoftHsm();
});
test.after(() => hsm?.cleanup());

const MESSAGE = new TextEncoder().encode("an identity record");
/** Every message a refusal printed, to look for the PIN in. */
const messages: string[] = [];

function failsWith(fn: () => unknown, code: ErrorCode): string {
  const message = refusal(fn, code);
  messages.push(message);
  return message;
}

const ID = {
  serial: "SN-HSM-1",
  product_id: "speaker",
  client_id: "cid",
  device_public_key: new Uint8Array(32).fill(3),
  provisioned_at: 1_700_000_000_000,
};

hsmTest("openLineSigner(pkcs11:) has pkcs11-tool's public key and signs in the HSM", () => {
  const s = openLineSigner(hsm!.uri);
  try {
    assert.equal(s.publicKey, hsm!.publicKey);
    const sig = s.sign(MESSAGE);
    assert.is(sig.length, 64);
    assert.ok(nacl.sign.detached.verify(MESSAGE, sig, hsm!.publicKey));
    // the same key by id, and by both
    for (
      const uri of [
        hsm!.uri.replace(`object=${KEY_LABEL}`, "id=%01"),
        hsm!.uri.replace(";", ";id=%01;"),
      ]
    ) {
      const t = openLineSigner(uri);
      assert.equal(t.publicKey, hsm!.publicKey, uri);
      t.close();
    }
  } finally {
    s.close();
  }
});

const havePython = await pythonHas("nacl.signing");
whenPython(hsmTest, havePython, "python3-nacl")(
  "signIdentity() with the HSM: verifyLineSignature() and python3-nacl accept the record",
  async () => {
    const s = openLineSigner(hsm!.uri);
    let signed;
    try {
      signed = signIdentity(ID, s);
    } finally {
      s.close();
    }
    assert.ok(verifyLineSignature(signed));
    assert.equal(signed.line_public_key, hsm!.publicKey);
    const ok = await python(
      `import json, sys, nacl.signing
i = json.load(sys.stdin)
k = nacl.signing.VerifyKey(bytes.fromhex(i["pk"]))
k.verify(bytes.fromhex(i["record"]), bytes.fromhex(i["sig"]))
bad = bytearray.fromhex(i["sig"]); bad[0] ^= 1
try:
    k.verify(bytes.fromhex(i["record"]), bytes(bad)); print(json.dumps("bad accepted"))
except nacl.exceptions.BadSignatureError:
    print(json.dumps("ok"))`,
      { pk: toHex(hsm!.publicKey), record: toHex(signed.record), sig: toHex(signed.signature!) },
    );
    assert.is(ok, "ok");
  },
);

hsmTest(
  "openLineSigner(pkcs11:) shares the module: closing one signer leaves another signing",
  () => {
    const a = openLineSigner(hsm!.uri);
    const b = openLineSigner(hsm!.uri);
    a.close();
    assert.ok(nacl.sign.detached.verify(MESSAGE, b.sign(MESSAGE), hsm!.publicKey));
    b.close();
    const c = openLineSigner(hsm!.uri); // the library was finalized and unloaded: loads again
    assert.ok(nacl.sign.detached.verify(MESSAGE, c.sign(MESSAGE), hsm!.publicKey));
    c.close();
  },
);

hsmTest("openLineSigner(pkcs11:) with a wrong PIN: BAD_LINE_KEY naming CKR_PIN_INCORRECT", () => {
  const wrong = `${hsm!.dir}/wrong.pin`;
  Deno.writeTextFileSync(wrong, "0000-wrong-pin-value\n", { mode: 0o600 });
  const msg = failsWith(
    () => openLineSigner(hsm!.uri.replace(hsm!.pinFile, wrong)),
    Code.BAD_LINE_KEY,
  );
  assert.is(
    msg,
    "Cannot open the line key pkcs11:token=line;object=line-key: the HSM refused the PIN (CKR_PIN_INCORRECT); check pin-source",
  );
  assert.not.match(msg, /0000-wrong/);
});

hsmTest(
  "openLineSigner(pkcs11:) refuses a PIN file group or others may read, before any login",
  () => {
    const open = `${hsm!.dir}/open.pin`;
    Deno.writeTextFileSync(open, USER_PIN, { mode: 0o644 });
    Deno.chmodSync(open, 0o644);
    const msg = failsWith(
      () => openLineSigner(hsm!.uri.replace(hsm!.pinFile, open)),
      Code.BAD_LINE_KEY,
    );
    assert.match(msg, /its mode 0644 lets group or others read or write it; run chmod 600 /);
    failsWith(
      () => openLineSigner(hsm!.uri.replace(hsm!.pinFile, `${hsm!.dir}/absent.pin`)),
      Code.LINE_KEY_MISSING,
    );
  },
);

hsmTest("openLineSigner(pkcs11:) for a token or key that is not there: LINE_KEY_MISSING", () => {
  assert.match(
    failsWith(
      () => openLineSigner(hsm!.uri.replace("token=line", "token=other")),
      Code.LINE_KEY_MISSING,
    ),
    /no token of \/usr\/lib\/softhsm\/libsofthsm2.so matches \(tokens there: "line"\); check token=/,
  );
  assert.match(
    failsWith(
      () => openLineSigner(hsm!.uri.replace("=line-key", "=other-key")),
      Code.LINE_KEY_MISSING,
    ),
    /the token holds no private key with this object; check object=/,
  );
  failsWith(() => openLineSigner(hsm!.uri.replace(";", ";id=%02;")), Code.LINE_KEY_MISSING);
  // without a login the private key is not visible
  assert.match(
    failsWith(() => openLineSigner(hsm!.uri.replace(/&pin-source=.*$/, "")), Code.LINE_KEY_MISSING),
    /visible without a login \(add pin-source=file:PATH\)/,
  );
  failsWith(
    () => openLineSigner(hsm!.uri.replace(";", ";library-description=Other;")),
    Code.LINE_KEY_MISSING,
  );
});

hsmTest(
  "openLineSigner(pkcs11:) with a module-path that is no PKCS #11 library: coded refusal",
  () => {
    const libz = ["/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/aarch64-linux-gnu/libz.so.1"]
      .find((p) => {
        try {
          return Deno.statSync(p).isFile;
        } catch {
          return false;
        }
      });
    if (libz !== undefined) {
      assert.match(
        failsWith(() => openLineSigner(hsm!.uri.replace(SOFTHSM_MODULE, libz)), Code.BAD_LINE_KEY),
        /it has no C_GetFunctionList, so it is not a PKCS #11 library; check module-path$/,
      );
    }
    assert.match(
      failsWith(
        () => openLineSigner(hsm!.uri.replace(SOFTHSM_MODULE, hsm!.pinFile)),
        Code.BAD_LINE_KEY,
      ),
      /cannot be loaded as a library/,
    );
    failsWith(
      () => openLineSigner(hsm!.uri.replace(SOFTHSM_MODULE, `${hsm!.dir}/absent.so`)),
      Code.LINE_KEY_MISSING,
    );
  },
);

hsmTest("no refusal of the HSM signer carries the PIN", () => {
  assert.ok(messages.length >= 10, `${messages.length} messages`);
  for (const m of messages) {
    assert.not.ok(m.includes(USER_PIN), m);
  }
});

test.run();
