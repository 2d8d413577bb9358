/**
 * The contract's `say` payload: a spoken prompt with the code spelled out and the URL in words.
 *
 * - The code is spelled one character at a time, separated by commas ("B, C, D, F"), a form TTS
 *   engines read as letter names; digits stay digits (read as numbers, one by one); the dash of
 *   an RFC 8628 code ends a sentence, a pause between the two halves ("B, C, D, F. G, H, J, K.").
 *   Letters are upper-cased (codes are case-insensitive).
 * - Optional, off by default (`phonetic: true`): each letter with its spelling-alphabet word,
 *   "B as in Bravo" (NATO/ICAO, spelt Alpha and Juliet so TTS pronounces them right) or
 *   "B wie Berlin" (DIN 5009:2022). Longer to listen to; clearer in a noisy room.
 * - The URL is `verification_uri` in words: host without "www." ("amazon dot com"), port
 *   ("colon 8080"), path segments ("slash us slash code"), no scheme, no query. A loopback host
 *   (127.x.x.x, ::1, localhost — the local development server) is said as "localhost".
 * - Languages: a table per language, chosen by the primary subtag of the BCP 47 tag (`en-*`,
 *   `de-*`); the payload keeps the requested tag (so "de-AT" is German text for an Austrian
 *   voice). Any other language falls back to the English text with `lang` "en-US", so the audio
 *   pipeline never reads English words with, say, a French voice.
 *
 * RFC 8628 section 5.7: a code said aloud must reach only the people near the device. The prompt
 * is for the speaker's own audio pipeline (`P/say`, never retained); `repeatSchedule` keeps the
 * repeats few (default 3, one a minute) and stops them before the code expires.
 */
import type { PairingInfo, Say } from "../contract.ts";

export interface VoiceOptions {
  /** Each letter with its spelling-alphabet word (default false). */
  phonetic?: boolean;
}

interface Phrases {
  /** The whole prompt around the URL words and the spelled code. */
  prompt(url: string, code: string): string;
  dot: string;
  slash: string;
  colon: string;
  dash: string;
  underscore: string;
  /** Letter plus spelling word: "B as in Bravo". */
  spelled(letter: string, word: string): string;
  alphabet: readonly string[];
}

const PHRASES: Readonly<Record<string, Phrases>> = {
  en: {
    prompt: (url, code) =>
      `To link this device, go to ${url}, and enter the code: ${code} ` +
      `Once more, the code is: ${code}`,
    dot: "dot",
    slash: "slash",
    colon: "colon",
    dash: "dash",
    underscore: "underscore",
    spelled: (l, w) => `${l} as in ${w}`,
    alphabet: [
      "Alpha",
      "Bravo",
      "Charlie",
      "Delta",
      "Echo",
      "Foxtrot",
      "Golf",
      "Hotel",
      "India",
      "Juliet",
      "Kilo",
      "Lima",
      "Mike",
      "November",
      "Oscar",
      "Papa",
      "Quebec",
      "Romeo",
      "Sierra",
      "Tango",
      "Uniform",
      "Victor",
      "Whiskey",
      "X-ray",
      "Yankee",
      "Zulu",
    ],
  },
  de: {
    prompt: (url, code) =>
      `Um dieses Gerät zu verknüpfen, öffne ${url}, und gib diesen Code ein: ${code} ` +
      `Noch einmal, der Code lautet: ${code}`,
    dot: "Punkt",
    slash: "Schrägstrich",
    colon: "Doppelpunkt",
    dash: "Bindestrich",
    underscore: "Unterstrich",
    spelled: (l, w) => `${l} wie ${w}`,
    alphabet: [
      "Aachen",
      "Berlin",
      "Chemnitz",
      "Düsseldorf",
      "Essen",
      "Frankfurt",
      "Goslar",
      "Hamburg",
      "Ingelheim",
      "Jena",
      "Köln",
      "Leipzig",
      "München",
      "Nürnberg",
      "Offenbach",
      "Potsdam",
      "Quickborn",
      "Rostock",
      "Salzwedel",
      "Tübingen",
      "Unna",
      "Völklingen",
      "Wuppertal",
      "Xanten",
      "Ypsilon",
      "Zwickau",
    ],
  },
};

export const FALLBACK_LANG = "en-US";

/** Languages with a table of their own (primary subtags). */
export const VOICE_LANGUAGES: readonly string[] = Object.keys(PHRASES);

/** The table for `lang` and the tag to put in the payload (see the module comment). */
function resolve(lang: string): { phrases: Phrases; lang: string } {
  const primary = lang.trim().split(/[-_]/)[0]!.toLowerCase();
  const phrases = PHRASES[primary];
  if (phrases) return { phrases, lang: lang.trim() };
  return { phrases: PHRASES["en"]!, lang: FALLBACK_LANG };
}

/** The code spelled out: "B, C, D, F. G, H, J, K." */
export function spellCode(code: string, lang: string, opts: VoiceOptions = {}): string {
  const { phrases } = resolve(lang);
  const groups = code.toUpperCase().split(/[\s-]+/).filter((g) => g !== "");
  return groups.map((g) =>
    [...g].map((c) => {
      const i = c.charCodeAt(0) - 65;
      return opts.phonetic && i >= 0 && i < 26 ? phrases.spelled(c, phrases.alphabet[i]!) : c;
    }).join(", ") + "."
  ).join(" ");
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || host === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `verification_uri` in words: "amazon dot com slash us slash code". */
export function speakableUrl(uri: string, lang: string): string {
  const { phrases } = resolve(lang);
  const words = (s: string) =>
    s.replace(
      /[._-]/g,
      (c) => ` ${c === "." ? phrases.dot : c === "_" ? phrases.underscore : phrases.dash} `,
    )
      .replace(/\s+/g, " ").trim();
  let host: string, port: string, path: string;
  try {
    const u = new URL(uri);
    host = u.hostname.toLowerCase();
    port = u.port;
    path = u.pathname;
  } catch {
    const m = /^(?:[a-z][a-z0-9+.-]*:\/\/)?([^/:?#]*)(?::(\d+))?([^?#]*)/i.exec(uri.trim());
    host = (m?.[1] ?? "").toLowerCase();
    port = m?.[2] ?? "";
    path = m?.[3] ?? "";
  }
  const parts: string[] = [];
  parts.push(isLoopback(host) ? "localhost" : words(host.replace(/^www\./, "")));
  if (port) parts.push(phrases.colon, port);
  for (const seg of path.split("/")) {
    if (seg === "") continue;
    let s = seg;
    try {
      s = decodeURIComponent(seg);
    } catch {
      // keep it as it is
    }
    parts.push(phrases.slash, words(s));
  }
  return parts.join(" ");
}

/** The `say` payload for a pairing code. */
export function voicePrompt(p: PairingInfo, lang: string, opts: VoiceOptions = {}): Say {
  const r = resolve(lang);
  const code = spellCode(p.user_code, r.lang, opts);
  return { text: r.phrases.prompt(speakableUrl(p.verification_uri, r.lang), code), lang: r.lang };
}

export interface RepeatOptions {
  /** Time between prompts, ms (default 60 s). */
  everyMs?: number;
  /** Repeats after the first prompt (default 3). */
  max?: number;
  /** No repeat starts with less than this left before the code expires, ms (default 30 s). */
  minRemainingMs?: number;
}

/**
 * When to say the prompt again, as ms after the first prompt: every `everyMs`, at most `max`
 * times, none later than `minRemainingMs` before the code expires (taken from `expires_in`, on
 * the monotonic clock of whoever shows the code, since the wall clock may be unset).
 */
export function repeatSchedule(p: PairingInfo, opts: RepeatOptions = {}): number[] {
  const every = opts.everyMs ?? 60_000;
  const max = opts.max ?? 3;
  const minRemaining = opts.minRemainingMs ?? 30_000;
  if (!(every > 0) || !(max >= 0)) return [];
  const life = p.expires_in * 1000;
  const out: number[] = [];
  for (let k = 1; k <= max && k * every + minRemaining <= life; k++) out.push(k * every);
  return out;
}
