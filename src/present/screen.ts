/**
 * The contract's `display` payload: a 1-bit frame (default 128×64) with the user code in large
 * type, a QR code of `verification_uri_complete` (or `verification_uri`) and, when it fits, the
 * short URL text (`verification_uri` without scheme and `www.`).
 *
 * The layout is chosen among candidates — QR on the left with the text to its right, QR on top
 * with the text below, or no QR — by these wishes, in order:
 * 1. the code in large type (font scale ≥ 2) when the screen allows it at all;
 * 2. a QR code, with modules of ≥ 1 px and a quiet zone of ≥ 2 modules (4 preferred: the
 *    standard's; 2 is what phone scanners and zbar read reliably, and the screen's own blank
 *    border adds to it);
 * 3. QR modules up to a size where the code spans about 45 % of the screen's shorter side;
 * 4. the code up to a scale whose capitals are a fifth of the screen's shorter side;
 * 5. the URL text; 6. larger QR modules; 7. a larger code; 8. a larger URL;
 * 9. a wider quiet zone; 10. error correction M over L; 11. the code on one line.
 * So 128×64 shows a 2 px-module QR on the left and the code on two lines at scale 3 with the URL
 * below it; 296×128 the same, larger; 64×48 a 1 px-module QR and a scale-2 code without the URL.
 * Whatever is left out is said in `notes` (the QR when it cannot fit, the URL text, small type).
 *
 * A long code is split on two lines at its dash (RFC 8628 "BCDF-GHJK" → "BCDF" / "GHJK"), or in
 * halves without one (LWA "ABCDEF" → "ABC" / "DEF").
 */
import type { Display, PairingInfo } from "../contract.ts";
import { Bitmap } from "./bitmap.ts";
import { CAP_HEIGHT, drawText, GLYPH_WIDTH, SPACING, textHeight, textWidth } from "./font.ts";
import { type EccLevel, encodeQr, type QrCode } from "./qr.ts";
import { DEFAULT_SCREEN, MAX_SCREEN_SIDE } from "./geometry.ts";

export interface ScreenOptions {
  /** Pixels (default 128). */
  width?: number;
  /** Pixels (default 64). */
  height?: number;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ScreenLayout {
  /** The QR code's box, quiet zone included; null when it was left out. */
  qr:
    | (Box & { module: number; quiet: number; version: number; ecl: EccLevel; text: string })
    | null;
  /** The code's box: `lines` of capitals at font `scale`. */
  code: Box & { scale: number; lines: string[] };
  /** The URL text's box; null when it was left out. */
  url: (Box & { scale: number; lines: string[] }) | null;
}

/** The `display` payload plus how it was laid out. */
export interface ScreenFrame extends Display {
  /** What had to be left out or shrunk, for a log; empty when everything fit. */
  notes: string[];
  layout: ScreenLayout;
}

export const MIN_QUIET_ZONE = 2;
const QUIET_ZONES = [4, 3, MIN_QUIET_ZONE];
const MAX_SIDE = MAX_SCREEN_SIDE;
const MAX_URL_LINES = 3;

/** `verification_uri` as a person types it: no scheme, no `www.`, no trailing slash. */
export function shortUrl(uri: string): string {
  try {
    const u = new URL(uri);
    const host = u.hostname.toLowerCase().replace(/^www\./, "");
    const port = u.port ? `:${u.port}` : "";
    const path = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "");
    return `${host}${port}${path}${u.search}`;
  } catch {
    return uri.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  }
}

/** The code's line splits to try: one line, and two lines (at the dash, or in halves). */
function codeSplits(code: string): string[][] {
  const splits = [[code]];
  const dash = code.indexOf("-");
  if (dash > 0 && dash < code.length - 1) {
    splits.push([code.slice(0, dash), code.slice(dash + 1)]);
  } else if (code.length >= 4) {
    const half = Math.ceil(code.length / 2);
    splits.push([code.slice(0, half), code.slice(half)]);
  }
  return splits;
}

/**
 * Wraps a URL in lines of at most `max` characters: breaks before `/`, `?` and `#`, after
 * `.`, `:`, `-`, `&` and `=`, and inside a piece only when the piece alone is too long.
 */
export function wrapUrl(text: string, max: number): string[] {
  if (max < 1) return [];
  const pieces: string[] = [];
  let cur = "";
  for (const c of text) {
    if ("/?#".includes(c) && cur !== "") {
      pieces.push(cur);
      cur = "";
    }
    cur += c;
    if (".:-&=".includes(c)) {
      pieces.push(cur);
      cur = "";
    }
  }
  if (cur !== "") pieces.push(cur);
  const lines: string[] = [];
  let line = "";
  for (let p of pieces) {
    if (line.length + p.length <= max) {
      line += p;
      continue;
    }
    if (line !== "") lines.push(line);
    line = "";
    while (p.length > max) {
      lines.push(p.slice(0, max));
      p = p.slice(max);
    }
    line = p;
  }
  if (line !== "") lines.push(line);
  return lines;
}

interface TextFit {
  codeLines: string[];
  codeScale: number;
  codeW: number;
  codeH: number;
  url: { lines: string[]; scale: number; w: number; h: number; gap: number } | null;
}

interface QrPlacement {
  qr: QrCode;
  text: string;
  module: number;
  quiet: number;
  box: Box;
}

interface Candidate {
  qr: QrPlacement | null;
  region: Box;
  fit: TextFit;
  key: number[];
}

function urlBlock(url: string, width: number, scale: number) {
  const perLine = Math.floor((width / scale + SPACING) / (GLYPH_WIDTH + SPACING));
  const lines = wrapUrl(url, perLine);
  if (lines.length === 0 || lines.length > MAX_URL_LINES) return null;
  const gap = scale;
  const h = lines.reduce((n, l) => n + textHeight(l, scale), 0) + gap * (lines.length - 1);
  const w = Math.max(...lines.map((l) => textWidth(l, scale)));
  return { lines, scale, w, h, gap };
}

/** Every way the code (and maybe the URL) fits in a region, code scale ≥ 1. */
function textFits(code: string, url: string, region: Box): TextFit[] {
  const fits: TextFit[] = [];
  if (region.width <= 0 || region.height <= 0) return fits;
  const blocks = [1, 2].map((u) => urlBlock(url, region.width, u));
  for (const lines of codeSplits(code)) {
    const longest = Math.max(...lines.map((l) => [...l].length));
    for (let c = 1;; c++) {
      const codeW = textWidth("M".repeat(longest), c);
      const codeH = lines.length * CAP_HEIGHT * c + (lines.length - 1) * c;
      if (codeW > region.width || codeH > region.height) break;
      fits.push({ codeLines: lines, codeScale: c, codeW, codeH, url: null });
      for (const block of blocks) {
        if (block && codeH + 2 * block.scale + block.h <= region.height) {
          fits.push({ codeLines: lines, codeScale: c, codeW, codeH, url: block });
        }
      }
    }
  }
  return fits;
}

function qrPlacements(
  qrs: { qr: QrCode; text: string }[],
  w: number,
  h: number,
): { place: QrPlacement; region: Box }[] {
  const out: { place: QrPlacement; region: Box }[] = [];
  const margin = 1;
  for (const { qr, text } of qrs) {
    for (const quiet of QUIET_ZONES) {
      const span = qr.size + 2 * quiet;
      for (let module = 1; span * module <= Math.min(w, h); module++) {
        const side = span * module;
        // QR on the left, text to its right.
        out.push({
          place: {
            qr,
            text,
            module,
            quiet,
            box: { x: 0, y: (h - side) >> 1, width: side, height: side },
          },
          region: { x: side, y: margin, width: w - side - margin, height: h - 2 * margin },
        });
        // QR on top, text below.
        out.push({
          place: {
            qr,
            text,
            module,
            quiet,
            box: { x: (w - side) >> 1, y: 0, width: side, height: side },
          },
          region: { x: margin, y: side, width: w - 2 * margin, height: h - side - margin },
        });
      }
    }
  }
  return out;
}

function keyOf(
  c: { qr: QrPlacement | null; fit: TextFit },
  target: { code: number; module: number },
): number[] {
  const f = c.fit;
  return [
    Math.min(f.codeScale, 2),
    c.qr ? 1 : 0,
    Math.min(c.qr?.module ?? 0, target.module),
    Math.min(f.codeScale, target.code),
    f.url ? 1 : 0,
    c.qr?.module ?? 0,
    f.codeScale,
    f.url?.scale ?? 0,
    c.qr?.quiet ?? 0,
    c.qr?.qr.ecl === "M" ? 1 : 0,
    -f.codeLines.length,
  ];
}

function better(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

function checkSide(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
    throw new RangeError(`screen ${name} must be a whole number from 1 to ${MAX_SIDE}: ${v}`);
  }
  return v;
}

export function screenFrame(p: PairingInfo, opts: ScreenOptions = {}): ScreenFrame {
  const W = checkSide("width", opts.width ?? DEFAULT_SCREEN.width);
  const H = checkSide("height", opts.height ?? DEFAULT_SCREEN.height);
  const code = p.user_code.trim().toUpperCase();
  const url = shortUrl(p.verification_uri);
  const qrText = p.verification_uri_complete ?? p.verification_uri;
  const notes: string[] = [];

  const qrs: { qr: QrCode; text: string }[] = [];
  for (const ecl of ["M", "L"] as const) {
    try {
      const qr = encodeQr(qrText, ecl);
      if (!qrs.some((q) => q.qr.version === qr.version)) qrs.push({ qr, text: qrText });
    } catch {
      // too long at this level
    }
  }

  const smallest = qrs[qrs.length - 1]?.qr.size ?? 0;
  const target = {
    code: Math.max(2, Math.floor((Math.min(W, H) * 0.2) / CAP_HEIGHT)),
    module: Math.max(1, Math.floor((Math.min(W, H) * 0.45) / (smallest + 2 * MIN_QUIET_ZONE))),
  };
  let best: Candidate | null = null;
  const consider = (qr: QrPlacement | null, region: Box) => {
    for (const fit of textFits(code, url, region)) {
      const key = keyOf({ qr, fit }, target);
      if (best === null || better(key, best.key)) best = { qr, region, fit, key };
    }
  };
  consider(null, { x: 1, y: 1, width: W - 2, height: H - 2 });
  const qrFits = qrPlacements(qrs, W, H);
  for (const { place, region } of qrFits) consider(place, region);
  const chosen = best as Candidate | null;
  if (chosen === null) throw new RangeError(`a ${W}x${H} screen is too small for the code`);

  if (qrs.length === 0) {
    notes.push("qr: left out, the URI is too long for a QR code");
  } else if (!chosen.qr) {
    const q = qrs[qrs.length - 1]!.qr;
    const need = q.size + 2 * MIN_QUIET_ZONE;
    notes.push(
      qrFits.length === 0
        ? `qr: left out, version ${q.version} needs ${need}x${need} px (1 px modules, ` +
          `${MIN_QUIET_ZONE}-module quiet zone) and the screen is ${W}x${H}`
        : "qr: left out, the code would not fit in large type beside it",
    );
  }
  if (!chosen.fit.url) notes.push("url: left out, no room for the URL text");
  if (chosen.fit.codeScale < 2) notes.push("code: small type, no room for large type");

  const b = new Bitmap(W, H);
  let qrLayout: ScreenLayout["qr"] = null;
  if (chosen.qr) {
    const { qr, module, quiet, box, text } = chosen.qr;
    for (let my = 0; my < qr.size; my++) {
      for (let mx = 0; mx < qr.size; mx++) {
        if (qr.modules[my]![mx]) {
          b.fillRect(box.x + (quiet + mx) * module, box.y + (quiet + my) * module, module, module);
        }
      }
    }
    qrLayout = { ...box, module, quiet, version: qr.version, ecl: qr.ecl, text };
  }

  const { region, fit } = chosen;
  const c = fit.codeScale;
  const blockH = fit.codeH + (fit.url ? 2 * fit.url.scale + fit.url.h : 0);
  let y = region.y + ((region.height - blockH) >> 1);
  const codeBox = {
    x: region.x + ((region.width - fit.codeW) >> 1),
    y,
    width: fit.codeW,
    height: fit.codeH,
    scale: c,
    lines: fit.codeLines,
  };
  for (const line of fit.codeLines) {
    drawText(b, region.x + ((region.width - textWidth(line, c)) >> 1), y, line, c);
    y += (CAP_HEIGHT + 1) * c;
  }
  let urlLayout: ScreenLayout["url"] = null;
  if (fit.url) {
    const u = fit.url;
    y = codeBox.y + fit.codeH + 2 * u.scale;
    urlLayout = {
      x: region.x + ((region.width - u.w) >> 1),
      y,
      width: u.w,
      height: u.h,
      scale: u.scale,
      lines: u.lines,
    };
    for (const line of u.lines) {
      drawText(b, region.x + ((region.width - textWidth(line, u.scale)) >> 1), y, line, u.scale);
      y += textHeight(line, u.scale) + u.gap;
    }
  }
  return {
    width: W,
    height: H,
    bitmap: b.data,
    notes,
    layout: { qr: qrLayout, code: codeBox, url: urlLayout },
  };
}
