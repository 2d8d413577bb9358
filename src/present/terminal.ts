/**
 * Text for the development terminal and the demo: the code in big letters (linkd's own 5×7 font
 * in block characters, two pixel rows per text line), the URL, the expiry, optionally the QR
 * code, and what the LED segment display shows, as ASCII art of 7- or 14-segment digits.
 */
import type { PairingInfo, Segment } from "../contract.ts";
import { Bitmap } from "./bitmap.ts";
import { CAP_HEIGHT, renderText } from "./font.ts";
import { encodeQr } from "./qr.ts";
import { SEG14, SEG7, type SegmentKind } from "./segment_font.ts";

export interface TerminalOptions {
  /** ASCII only (`#` for ink, one text line per pixel row); default: Unicode half blocks. */
  ascii?: boolean;
  /** The segment payload to draw below, and its kind. */
  segment?: { payload: Segment; kind: SegmentKind };
  /** Also draw the QR code (Unicode only; light modules as blocks, for a dark terminal). */
  qr?: boolean;
  /** Columns available for the segment frames (default 80). */
  columns?: number;
}

/** A bitmap as text: half blocks (two rows a line) or `#` (one row a line). */
export function bitmapText(b: Bitmap, ascii = false): string {
  const lines: string[] = [];
  if (ascii) {
    for (let y = 0; y < b.height; y++) {
      let l = "";
      for (let x = 0; x < b.width; x++) l += b.get(x, y) ? "#" : " ";
      lines.push(l.trimEnd());
    }
  } else {
    for (let y = 0; y < b.height; y += 2) {
      let l = "";
      for (let x = 0; x < b.width; x++) {
        const top = b.get(x, y), bottom = b.get(x, y + 1);
        l += top ? (bottom ? "█" : "▀") : bottom ? "▄" : " ";
      }
      lines.push(l.trimEnd());
    }
  }
  return lines.join("\n");
}

/** The code in big letters. */
export function bigText(text: string, ascii = false): string {
  const b = renderText(text);
  return bitmapText(b.crop(0, 0, b.width, CAP_HEIGHT), ascii);
}

function expiry(p: PairingInfo): string {
  const s = Math.max(0, Math.round(p.expires_in));
  const m = Math.floor(s / 60), r = s % 60;
  const left = m > 0 ? `${m} min${r ? ` ${r} s` : ""}` : `${r} s`;
  const at = Number.isFinite(p.expires_at) && p.expires_at > 0
    ? `, at ${new Date(p.expires_at).toISOString().replace(/\.\d+Z$/, "Z")}`
    : "";
  return `expires in ${left}${at}`;
}

/** One 7-segment digit as 3 lines of 3 characters. */
function digit7(m: number): string[] {
  const on = (bit: number, c: string) => (m & bit ? c : " ");
  return [
    ` ${on(SEG7.a, "_")} `,
    `${on(SEG7.f, "|")}${on(SEG7.g, "_")}${on(SEG7.b, "|")}`,
    `${on(SEG7.e, "|")}${on(SEG7.d, "_")}${on(SEG7.c, "|")}`,
  ];
}

/**
 * One 14-segment digit as 6 lines of 7 characters:
 * ```
 *  _____
 * |\ | /|
 * | \|/ |
 *  -- --
 * | /|\ |
 * |/_|_\|
 * ```
 */
function digit14(m: number): string[] {
  const S = SEG14;
  const on = (bit: number, c: string, off = " ") => (m & bit ? c : off);
  const d = on(S.d, "_");
  return [
    ` ${on(S.a, "_____", "     ")} `,
    `${on(S.f, "|")}${on(S.h, "\\")} ${on(S.i, "|")} ${on(S.j, "/")}${on(S.b, "|")}`,
    `${on(S.f, "|")} ${on(S.h, "\\")}${on(S.i, "|")}${on(S.j, "/")} ${on(S.b, "|")}`,
    ` ${on(S.g1, "--", "  ")}${m & S.g1 && m & S.g2 ? "-" : " "}${on(S.g2, "--", "  ")} `,
    `${on(S.e, "|")} ${on(S.k, "/")}${on(S.l, "|")}${on(S.m, "\\")} ${on(S.c, "|")}`,
    `${on(S.e, "|")}${on(S.k, "/", d)}${d}${on(S.l, "|", d)}${d}${on(S.m, "\\", d)}${on(S.c, "|")}`,
  ];
}

/** One frame of the segment display (its digits side by side). */
export function segmentFrameArt(frame: readonly number[], kind: SegmentKind): string[] {
  const digits = frame.map((m) => (kind === 14 ? digit14(m) : digit7(m)));
  const rows = kind === 14 ? 6 : 3;
  return Array.from({ length: rows }, (_, r) => digits.map((d) => d[r]!).join(" "));
}

/** Every frame of a segment payload, framed like a display, as many to a row as fit. */
export function segmentArt(payload: Segment, kind: SegmentKind, columns = 80): string {
  const arts = payload.frames.map((f) => segmentFrameArt(f, kind).map((l) => `[${l}]`));
  const width = (arts[0]?.[0]?.length ?? 0) + 2;
  const perRow = Math.max(1, Math.floor((columns + 2) / width));
  const out: string[] = [];
  for (let i = 0; i < arts.length; i += perRow) {
    const group = arts.slice(i, i + perRow);
    for (let r = 0; r < group[0]!.length; r++) out.push(group.map((a) => a[r]!).join("  "));
    if (i + perRow < arts.length) out.push("");
  }
  const what = payload.frames.length === 1
    ? `${payload.digits}-digit ${kind}-segment display`
    : `${payload.digits}-digit ${kind}-segment display, ${payload.frames.length} frames of ${payload.frame_ms} ms, looping`;
  return `${what}:\n${out.join("\n")}`;
}

/** The QR code of `text` in half blocks, light modules drawn (for a dark terminal). */
function qrText(text: string): string {
  const qr = encodeQr(text, "L");
  const q = 2;
  const b = new Bitmap(qr.size + 2 * q, qr.size + 2 * q);
  b.fillRect(0, 0, b.width, b.height);
  qr.modules.forEach((row, y) => row.forEach((d, x) => d && b.set(x + q, y + q, false)));
  return bitmapText(b);
}

/** The whole terminal view of a pairing code. */
export function terminalText(p: PairingInfo, opts: TerminalOptions = {}): string {
  const code = p.user_code.trim().toUpperCase();
  const parts = [
    "To link this device, open",
    `  ${p.verification_uri}`,
    "and enter the code",
    "",
    bigText(code, opts.ascii).split("\n").map((l) => `  ${l}`).join("\n"),
    "",
    `  ${code}   ${expiry(p)}`,
  ];
  if (p.verification_uri_complete) {
    parts.push("", `or open ${p.verification_uri_complete}`);
  }
  if (opts.qr && !opts.ascii) {
    parts.push("", qrText(p.verification_uri_complete ?? p.verification_uri));
  }
  if (opts.segment) {
    parts.push("", segmentArt(opts.segment.payload, opts.segment.kind, opts.columns ?? 80));
  }
  return parts.join("\n");
}
