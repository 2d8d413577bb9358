import { test } from "uvu";
import * as assert from "uvu/assert";
import { lwaPairing, rfcPairing } from "../../test/support/present.ts";
import { repeatSchedule, speakableUrl, spellCode, voicePrompt } from "./voice.ts";

const LWA = lwaPairing();

const RFC = rfcPairing({ expires_at: Date.UTC(2026, 10, 24, 12, 30), expires_in: 1800 });

test("an LWA code in English: letters one by one, the URL in words", () => {
  assert.equal(voicePrompt(LWA, "en-US"), {
    text: "To link this device, go to amazon dot com slash us slash code, and enter the code: " +
      "Q, F, H, Z, K, M. Once more, the code is: Q, F, H, Z, K, M.",
    lang: "en-US",
  });
});

test("an RFC 8628 code: the dash is a pause between the halves; loopback is localhost", () => {
  assert.equal(voicePrompt(RFC, "en-US"), {
    text: "To link this device, go to localhost colon 54321 slash code, and enter the code: " +
      "B, C, D, F. G, H, J, K. Once more, the code is: B, C, D, F. G, H, J, K.",
    lang: "en-US",
  });
});

test("German: its own words and the same spelling", () => {
  assert.equal(voicePrompt(LWA, "de-DE"), {
    text: "Um dieses Gerät zu verknüpfen, öffne amazon Punkt com Schrägstrich us Schrägstrich " +
      "code, und gib diesen Code ein: Q, F, H, Z, K, M. " +
      "Noch einmal, der Code lautet: Q, F, H, Z, K, M.",
    lang: "de-DE",
  });
  // Another German region keeps its tag, for a voice of that region.
  assert.is(voicePrompt(LWA, "de-AT").lang, "de-AT");
  assert.match(voicePrompt(LWA, "de-AT").text, /^Um dieses Gerät/);
});

test("an unknown language falls back to English text and en-US", () => {
  const p = voicePrompt(LWA, "fr-FR");
  assert.is(p.lang, "en-US");
  assert.is(p.text, voicePrompt(LWA, "en-US").text);
  assert.is(voicePrompt(LWA, "").lang, "en-US");
  assert.is(voicePrompt(LWA, "en-GB").lang, "en-GB");
});

test("spelling: digits stay digits, lower case is upper-cased, optional spelling alphabet", () => {
  assert.is(spellCode("ab12", "en-US"), "A, B, 1, 2.");
  assert.is(spellCode("BCDF-GHJK", "en-US"), "B, C, D, F. G, H, J, K.");
  assert.is(
    spellCode("AJX-9", "en-US", { phonetic: true }),
    "A as in Alpha, J as in Juliet, X as in X-ray. 9.",
  );
  assert.is(
    spellCode("QFHZKM", "de-DE", { phonetic: true }),
    "Q wie Quickborn, F wie Frankfurt, H wie Hamburg, Z wie Zwickau, K wie Köln, M wie München.",
  );
  assert.match(
    voicePrompt(LWA, "en-US", { phonetic: true }).text,
    /enter the code: Q as in Quebec, F as in Foxtrot, H as in Hotel, Z as in Zulu, K as in Kilo, M as in Mike\. /,
  );
});

test("URLs in words: www dropped, ports, hyphens, trailing slash, odd input", () => {
  assert.is(
    speakableUrl("https://www.amazon.co.uk/code", "en-US"),
    "amazon dot co dot uk slash code",
  );
  assert.is(
    speakableUrl("https://auth.example.com:8443/device-login/", "en-US"),
    "auth dot example dot com colon 8443 slash device dash login",
  );
  assert.is(speakableUrl("http://localhost:8080/code", "en-US"), "localhost colon 8080 slash code");
  assert.is(speakableUrl("https://[::1]/code", "en-US"), "localhost slash code");
  assert.is(speakableUrl("https://amazon.com", "de-DE"), "amazon Punkt com");
  assert.is(
    speakableUrl("https://example.com/a_b?x=1", "de-DE"),
    "example Punkt com Schrägstrich a Unterstrich b",
  );
  assert.is(speakableUrl("example.com/code", "en-US"), "example dot com slash code");
});

test("repeats: every minute, at most 3, none in the last 30 s of the code's life", () => {
  assert.equal(repeatSchedule(LWA), [60_000, 120_000, 180_000]);
  assert.equal(repeatSchedule({ ...LWA, expires_in: 150 }), [60_000, 120_000]);
  assert.equal(repeatSchedule({ ...LWA, expires_in: 89 }), []);
  assert.equal(repeatSchedule({ ...LWA, expires_in: 90 }), [60_000]);
  assert.equal(repeatSchedule(RFC, { everyMs: 30_000, max: 5 }), [
    30_000,
    60_000,
    90_000,
    120_000,
    150_000,
  ]);
  assert.equal(repeatSchedule(LWA, { max: 0 }), []);
  assert.equal(repeatSchedule(LWA, { everyMs: 0 }), []);
});

test.run();
