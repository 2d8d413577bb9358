/**
 * Test helpers of src/present: a PNG reader for the PNGs png.ts writes, Debian's `zbarimg` as
 * the independent QR decoder, and an OCR by template matching over linkd's own font.
 */
import type { PairingInfo } from "../../src/contract.ts";
import { inflateSync } from "node:zlib";
import { crc32 } from "../../src/bytes.ts";
import { Bitmap } from "../../src/present/bitmap.ts";
import { glyph } from "../../src/present/font.ts";
import type { Box } from "../../src/present/screen.ts";

/** Reads a 1-bit greyscale, non-interlaced PNG with filter 0 rows (what png.ts writes). */
export function decodePng(png: Uint8Array): Bitmap {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const sig = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
  if (!sig.every((v, i) => png[i] === v)) throw new Error("not a PNG");
  let o = 8, width = 0, height = 0;
  const idat: Uint8Array[] = [];
  for (;;) {
    const len = view.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    const data = png.subarray(o + 8, o + 8 + len);
    if (crc32(png, o + 4, o + 8 + len) !== view.getUint32(o + 8 + len)) {
      throw new Error(`bad CRC in ${type}`);
    }
    if (type === "IHDR") {
      width = view.getUint32(o + 8);
      height = view.getUint32(o + 12);
      const [depth, colour, , , interlace] = data.subarray(8, 13);
      if (depth !== 1 || colour !== 0 || interlace !== 0) throw new Error("not 1-bit grey");
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    o += 12 + len;
  }
  const all = new Uint8Array(idat.reduce((n, d) => n + d.length, 0));
  let p = 0;
  for (const d of idat) {
    all.set(d, p);
    p += d.length;
  }
  const raw = new Uint8Array(inflateSync(all));
  const b = new Bitmap(width, height);
  const rowBytes = (width + 7) >> 3;
  for (let y = 0; y < height; y++) {
    const r = y * (rowBytes + 1);
    if (raw[r] !== 0) throw new Error(`row ${y}: filter ${raw[r]}`);
    for (let x = 0; x < width; x++) {
      const white = (raw[r + 1 + (x >> 3)]! & (0x80 >> (x & 7))) !== 0;
      if (!white) b.set(x, y);
    }
  }
  return b;
}

let zbarChecked: boolean | null = null;

/** Whether Debian's zbarimg (package zbar-tools) is installed. */
export async function haveZbar(): Promise<boolean> {
  if (zbarChecked !== null) return zbarChecked;
  try {
    const out = await new Deno.Command("zbarimg", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    zbarChecked = out.success;
  } catch {
    zbarChecked = false;
  }
  return zbarChecked;
}

/**
 * Whether the zbar tests run: yes with zbarimg; without it, a warning and a skip — except on CI
 * (CI set), where the tests run and fail, so a missing install step cannot pass unnoticed.
 */
export async function zbarTestsRun(): Promise<boolean> {
  if (await haveZbar()) return true;
  if (Deno.env.get("CI")) return true;
  console.warn(
    "WARNING: zbarimg not found, skipping the QR decoding tests (apt-get install zbar-tools)",
  );
  return false;
}

/** What zbarimg reads from a PNG: the one QR code's text, or null when it finds none. */
export async function zbarDecode(png: Uint8Array): Promise<string | null> {
  if (!(await haveZbar())) {
    throw new Error("zbarimg is not installed (Debian package zbar-tools; scripts/setup.sh)");
  }
  const file = await Deno.makeTempFile({ prefix: "linkd-qr-", suffix: ".png" });
  try {
    await Deno.writeFile(file, png);
    const out = await new Deno.Command("zbarimg", {
      args: ["--raw", "-q", "-Sdisable", "-Sqrcode.enable", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) return null;
    const text = new TextDecoder().decode(out.stdout);
    return text.endsWith("\n") ? text.slice(0, -1) : text;
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/** A glyph trimmed to its ink. */
function trimmed(c: string): Bitmap {
  const g = glyph(c);
  let x0 = g.width, x1 = -1, y0 = g.height, y1 = -1;
  for (let y = 0; y < g.height; y++) {
    for (let x = 0; x < g.width; x++) {
      if (g.get(x, y)) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  return g.crop(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}

export interface OcrLine {
  text: string;
  /** The scale each character was found at. */
  scales: number[];
}

/**
 * Reads text in `region` of `b` by template matching over the font: lines are runs of rows with
 * ink, characters runs of columns with ink within a line; each character is trimmed to its ink
 * and compared, pixel for pixel at every whole scale, with each glyph of `alphabet` trimmed
 * alike. A character that matches no glyph, or more than one, reads as `?`.
 */
export function ocr(b: Bitmap, region: Box, alphabet: string): OcrLine[] {
  const img = b.crop(region.x, region.y, region.width, region.height);
  const templates = [...alphabet].map((c) => ({ c, t: trimmed(c) }));
  const runs = (n: number, ink: (i: number) => boolean) => {
    const out: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      if (!ink(i)) continue;
      const start = i;
      while (i < n && ink(i)) i++;
      out.push([start, i]);
    }
    return out;
  };
  const lines: OcrLine[] = [];
  for (
    const [y0, y1] of runs(
      img.height,
      (y) => [...Array(img.width).keys()].some((x) => img.get(x, y)),
    )
  ) {
    const line: OcrLine = { text: "", scales: [] };
    const colInk = (x: number) => {
      for (let y = y0; y < y1; y++) if (img.get(x, y)) return true;
      return false;
    };
    for (const [x0, x1] of runs(img.width, colInk)) {
      const rows = runs(y1 - y0, (dy) => {
        for (let x = x0; x < x1; x++) if (img.get(x, y0 + dy)) return true;
        return false;
      });
      const top = y0 + rows[0]![0], bottom = y0 + rows[rows.length - 1]![1];
      const blob = img.crop(x0, top, x1 - x0, bottom - top);
      const hits: { c: string; s: number }[] = [];
      for (const { c, t } of templates) {
        if (blob.width % t.width !== 0) continue;
        const s = blob.width / t.width;
        if (blob.height !== t.height * s) continue;
        let same = true;
        for (let y = 0; y < blob.height && same; y++) {
          for (let x = 0; x < blob.width && same; x++) {
            same = blob.get(x, y) === t.get(Math.floor(x / s), Math.floor(y / s));
          }
        }
        if (same) hits.push({ c, s });
      }
      line.text += hits.length === 1 ? hits[0]!.c : "?";
      line.scales.push(hits.length === 1 ? hits[0]!.s : 0);
    }
    lines.push(line);
  }
  return lines;
}

/** A Login with Amazon pairing as the link controller hands it over (overrides per test). */
export function lwaPairing(o: Partial<PairingInfo> = {}): PairingInfo {
  return {
    user_code: "QFHZKM",
    verification_uri: "https://amazon.com/us/code",
    expires_at: Date.UTC(2026, 10, 24, 12, 10),
    expires_in: 600,
    interval: 5,
    ...o,
  };
}

/** An RFC 8628 pairing: an 8-character code with a dash and the complete URI. */
export function rfcPairing(o: Partial<PairingInfo> = {}): PairingInfo {
  return {
    user_code: "BCDF-GHJK",
    verification_uri: "http://127.0.0.1:54321/code",
    verification_uri_complete: "http://127.0.0.1:54321/code?user_code=BCDF-GHJK",
    expires_at: Date.UTC(2026, 10, 24, 12, 10),
    expires_in: 600,
    interval: 5,
    ...o,
  };
}
