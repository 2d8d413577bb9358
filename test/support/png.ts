/**
 * Test support (it uses node:zlib, so it cannot ship): a 1-bit frame of src/present as a PNG for
 * a person to look at (the golden frames of screen_test.ts): 1-bit greyscale, ink black on
 * white, each pixel as a `scale`×`scale` block, with an optional white border (a QR quiet zone
 * for a scanner). Only IHDR, IDAT and IEND, compressed by node:zlib at level 9, so the same
 * frame always gives the same bytes on the same zlib.
 */
import { deflateSync } from "node:zlib";
import { crc32 } from "../../src/bytes.ts";
import { Bitmap } from "../../src/present/bitmap.ts";

export interface Frame {
  width: number;
  height: number;
  bitmap: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

export function encodePng(frame: Frame, scale = 1, border = 0): Uint8Array {
  const src = new Bitmap(frame.width, frame.height, frame.bitmap);
  const b = scale === 1 && border === 0 ? src : src.scaled(scale, border);
  if (b.width === 0 || b.height === 0) throw new RangeError("a PNG needs at least one pixel");
  // PNG greyscale: 1 = white. Each row: filter type 0, then the row with ink bits inverted.
  const raw = new Uint8Array((b.stride + 1) * b.height);
  for (let y = 0; y < b.height; y++) {
    const o = y * (b.stride + 1);
    for (let i = 0; i < b.stride; i++) raw[o + 1 + i] = ~b.data[y * b.stride + i]! & 0xff;
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, b.width);
  v.setUint32(4, b.height);
  ihdr.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, filter 0, no interlace
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }));
  const parts = [
    Uint8Array.from(SIGNATURE),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
