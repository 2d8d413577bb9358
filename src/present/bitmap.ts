/**
 * A 1-bit bitmap in the layout of the contract's `display` payload (`{width, height, bitmap}`):
 * row-major, MSB first, each row padded to a whole byte (stride = ceil(width / 8)); bit set =
 * ink (a dark pixel on paper or e-paper, a lit pixel on an OLED that lights set bits). The pixel
 * at (x, y) is bit `0x80 >> (x % 8)` of byte `y * stride + (x >> 3)`.
 */
export class Bitmap {
  readonly width: number;
  readonly height: number;
  /** Bytes per row. */
  readonly stride: number;
  readonly data: Uint8Array;

  constructor(width: number, height: number, data?: Uint8Array) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
      throw new RangeError(`bitmap size must be whole and non-negative: ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.stride = (width + 7) >> 3;
    const size = this.stride * height;
    if (data !== undefined && data.length !== size) {
      throw new RangeError(`a ${width}x${height} bitmap holds ${size} bytes, not ${data.length}`);
    }
    this.data = data ?? new Uint8Array(size);
  }

  /** Whether (x, y) is inside. */
  contains(x: number, y: number): boolean {
    return x >= 0 && y >= 0 && x < this.width && y < this.height;
  }

  /** The pixel at (x, y); outside the bitmap is blank. */
  get(x: number, y: number): boolean {
    if (!this.contains(x, y)) return false;
    return (this.data[y * this.stride + (x >> 3)]! & (0x80 >> (x & 7))) !== 0;
  }

  /** Sets (or clears) the pixel at (x, y); outside the bitmap is ignored (clipped). */
  set(x: number, y: number, on = true): void {
    if (!this.contains(x, y)) return;
    const i = y * this.stride + (x >> 3);
    const bit = 0x80 >> (x & 7);
    this.data[i] = on ? this.data[i]! | bit : this.data[i]! & ~bit;
  }

  /** Fills a rectangle (clipped). */
  fillRect(x: number, y: number, w: number, h: number, on = true): void {
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) this.set(xx, yy, on);
  }

  /** Copies `src` with its top-left at (dx, dy), each source pixel as a `scale`×`scale` block. */
  blit(src: Bitmap, dx: number, dy: number, scale = 1): void {
    for (let y = 0; y < src.height; y++) {
      for (let x = 0; x < src.width; x++) {
        if (src.get(x, y)) this.fillRect(dx + x * scale, dy + y * scale, scale, scale);
      }
    }
  }

  /** A copy of the rectangle at (x, y) of size w×h (pixels outside read as blank). */
  crop(x: number, y: number, w: number, h: number): Bitmap {
    const out = new Bitmap(w, h);
    for (let yy = 0; yy < h; yy++) {
      for (let xx = 0; xx < w; xx++) if (this.get(x + xx, y + yy)) out.set(xx, yy);
    }
    return out;
  }

  /** Each pixel as a `scale`×`scale` block, inside a blank border of `border` pixels. */
  scaled(scale: number, border = 0): Bitmap {
    if (!Number.isInteger(scale) || scale < 1 || !Number.isInteger(border) || border < 0) {
      throw new RangeError(`scale must be a whole number ≥ 1 and border ≥ 0`);
    }
    const out = new Bitmap(this.width * scale + 2 * border, this.height * scale + 2 * border);
    out.blit(this, border, border, scale);
    return out;
  }

  /** How many pixels are set. */
  count(): number {
    let n = 0;
    for (let y = 0; y < this.height; y++) for (let x = 0; x < this.width; x++) n += +this.get(x, y);
    return n;
  }

  /** Rows of `#` and `.`, for test messages. */
  toString(): string {
    const rows: string[] = [];
    for (let y = 0; y < this.height; y++) {
      let r = "";
      for (let x = 0; x < this.width; x++) r += this.get(x, y) ? "#" : ".";
      rows.push(r);
    }
    return rows.join("\n");
  }

  /** A bitmap from rows of `#` (ink) and any other character (blank). */
  static fromRows(rows: readonly string[]): Bitmap {
    const w = Math.max(0, ...rows.map((r) => r.length));
    const b = new Bitmap(w, rows.length);
    rows.forEach((r, y) => {
      for (let x = 0; x < r.length; x++) if (r[x] === "#") b.set(x, y);
    });
    return b;
  }
}
