/**
 * Fonts for LED segment displays: one bit mask per character, for A–Z, 0–9 and the dash.
 *
 * ## 7 segments: bit 0..6 = a..g (the common "gfedcba" convention, bit 7 = dp, unused)
 *
 * ```
 *    aaa          a = top            bit 0   0x01
 *   f   b         b = upper right    bit 1   0x02
 *   f   b         c = lower right    bit 2   0x04
 *    ggg          d = bottom         bit 3   0x08
 *   e   c         e = lower left     bit 4   0x10
 *   e   c         f = upper left     bit 5   0x20
 *    ddd          g = middle         bit 6   0x40
 * ```
 *
 * Digits take their usual shapes (6, 7 and 9 with their tails: 6 = 0x7D, 7 = 0x07, 9 = 0x6F).
 * Seven segments cannot draw every letter; these are the substitutions, chosen so that every
 * letter has its own mask (no two letters light the same segments):
 *
 * | letter | mask | drawn as | why |
 * | --- | --- | --- | --- |
 * | B | 0x7C | b | a capital B is 8 |
 * | D | 0x5E | d | a capital D is 0 |
 * | G | 0x3D | G without the middle bar | 6 has the bar |
 * | I | 0x30 | left bar (e f) | 1 is the right bar (b c) |
 * | K | 0x75 | H with the top bar instead of the upper right stroke | no diagonals; H is taken |
 * | M | 0x37 | an arch, ∩ (a b c e f) | no middle strokes; N is drawn as n |
 * | N | 0x54 | n | a capital N needs a diagonal |
 * | O | 0x5C | o (lower half) | a capital O is 0 |
 * | Q | 0x67 | q | a capital Q is 0 |
 * | R | 0x50 | r | a capital R needs a diagonal |
 * | T | 0x78 | t | a capital T needs the centre stroke |
 * | V | 0x1C | u (lower half) | no diagonals; U is the full cup |
 * | W | 0x7E | a cup split by the middle bar (b c d e f g) | no diagonals; U and V are taken |
 * | X | 0x36 | two side bars, no middle (b c e f) | no diagonals; H has the middle bar |
 * | Y | 0x6E | y (b c d f g) | a capital Y needs diagonals |
 * | Z | 0x1B | 2 without the middle bar (a b d e) | 2 is taken |
 *
 * The other letters keep their capital shape (A C E F H J L P S U).
 *
 * Ambiguities that remain on 7 segments, worth knowing when a code is read off the LEDs:
 * - S and 5 are the same mask (0x6D): there is no other way to draw either. No two letters
 *   share a mask, and no other letter equals a digit.
 * - Seven segments leave little room, so many letters are one segment apart and a single dead
 *   or misread segment turns one into the other. Letter pairs one segment apart:
 *   A/H A/K A/M A/P A/Q B/O B/T B/W C/E C/G C/L D/J D/O D/W E/F E/T F/K F/P H/W H/X I/L J/U
 *   J/V L/T M/X N/O N/R O/V U/W U/X W/Y; within RFC 8628's alphabet (BCDFGHJKLMNPQRSTVWXZ):
 *   B/T B/W C/G C/L D/J D/W F/K F/P H/W H/X J/V L/T M/X N/R. Letters one segment from a digit:
 *   A/8 B/6 E/6 G/0 G/6 H/4 K/6 M/0 Q/4 Q/9 S/6 S/9 U/0 W/8 Y/4 Y/9 Z/2.
 * - K, M, V, W and X are conventions a reader does not recognise on sight; they are meant to be
 *   read with the screen, the voice prompt or a legend.
 * LWA codes are letters only and RFC 8628's alphabet has no vowels and no digits, so the letter
 * to letter distinctions matter most; that is why every letter has its own mask. Where a code
 * must be read reliably from LEDs alone, use the 14-segment font: there every character has its
 * own mask and only A/H A/P B/D C/E C/L E/F I/T J/U O/Q O/U P/R (and G/6 S/6 S/9 H/4 A/8 among
 * letters and digits) are one segment apart.
 *
 * ## 14 segments: bits 0..13 = a, b, c, d, e, f, g1, g2, h, i, j, k, l, m (bit 14 = dp, unused)
 *
 * ```
 *    aaaaaaa        a, b, c, d, e, f  as on 7 segments
 *   f h  i  j b     g1 = middle left half, g2 = middle right half
 *   f  h i j  b     h = upper left diagonal (top left corner to the centre)
 *    g1g1 g2g2      i = upper centre vertical
 *   e  k l m  c     j = upper right diagonal (top right corner to the centre)
 *   e k  l  m c     k = lower left diagonal (centre to the bottom left corner)
 *    ddddddd        l = lower centre vertical
 *                   m = lower right diagonal (centre to the bottom right corner)
 * ```
 *
 * Every one of the 36 characters has its own mask: 0 carries the diagonal slash (j k) that O
 * lacks, 5 ends in the lower right diagonal (m) where S has c and g2.
 */

/** Segment bits of the 7-segment font. */
export const SEG7 = { a: 0x01, b: 0x02, c: 0x04, d: 0x08, e: 0x10, f: 0x20, g: 0x40 } as const;

/** Segment bits of the 14-segment font. */
export const SEG14 = {
  a: 1 << 0,
  b: 1 << 1,
  c: 1 << 2,
  d: 1 << 3,
  e: 1 << 4,
  f: 1 << 5,
  g1: 1 << 6,
  g2: 1 << 7,
  h: 1 << 8,
  i: 1 << 9,
  j: 1 << 10,
  k: 1 << 11,
  l: 1 << 12,
  m: 1 << 13,
} as const;

type Seg7 = keyof typeof SEG7;
type Seg14 = keyof typeof SEG14;

function mask7(segs: string): number {
  let m = 0;
  for (const s of segs) m |= SEG7[s as Seg7];
  return m;
}

function mask14(segs: string): number {
  let m = 0;
  for (const s of segs.split(" ")) m |= SEG14[s as Seg14];
  return m;
}

/** 7-segment masks (see the table above for the letters). */
export const FONT7: Readonly<Record<string, number>> = {
  "0": 0x3F,
  "1": 0x06,
  "2": 0x5B,
  "3": 0x4F,
  "4": 0x66,
  "5": 0x6D,
  "6": 0x7D,
  "7": 0x07,
  "8": 0x7F,
  "9": 0x6F,
  "A": mask7("abcefg"), // 0x77
  "B": mask7("cdefg"), // 0x7C  b
  "C": mask7("adef"), // 0x39
  "D": mask7("bcdeg"), // 0x5E  d
  "E": mask7("adefg"), // 0x79
  "F": mask7("aefg"), // 0x71
  "G": mask7("acdef"), // 0x3D
  "H": mask7("bcefg"), // 0x76
  "I": mask7("ef"), // 0x30
  "J": mask7("bcde"), // 0x1E
  "K": mask7("acefg"), // 0x75
  "L": mask7("def"), // 0x38
  "M": mask7("abcef"), // 0x37  ∩
  "N": mask7("ceg"), // 0x54  n
  "O": mask7("cdeg"), // 0x5C  o
  "P": mask7("abefg"), // 0x73
  "Q": mask7("abcfg"), // 0x67  q
  "R": mask7("eg"), // 0x50  r
  "S": mask7("acdfg"), // 0x6D  = 5
  "T": mask7("defg"), // 0x78  t
  "U": mask7("bcdef"), // 0x3E
  "V": mask7("cde"), // 0x1C  u
  "W": mask7("bcdefg"), // 0x7E
  "X": mask7("bcef"), // 0x36
  "Y": mask7("bcdfg"), // 0x6E
  "Z": mask7("abde"), // 0x1B
  "-": SEG7.g,
  " ": 0,
};

/** 14-segment masks. */
export const FONT14: Readonly<Record<string, number>> = {
  "0": mask14("a b c d e f j k"),
  "1": mask14("b c j"),
  "2": mask14("a b d e g1 g2"),
  "3": mask14("a b c d g2"),
  "4": mask14("b c f g1 g2"),
  "5": mask14("a d f g1 m"),
  "6": mask14("a c d e f g1 g2"),
  "7": mask14("a b c"),
  "8": mask14("a b c d e f g1 g2"),
  "9": mask14("a b c d f g1 g2"),
  "A": mask14("a b c e f g1 g2"),
  "B": mask14("a b c d g2 i l"),
  "C": mask14("a d e f"),
  "D": mask14("a b c d i l"),
  "E": mask14("a d e f g1"),
  "F": mask14("a e f g1"),
  "G": mask14("a c d e f g2"),
  "H": mask14("b c e f g1 g2"),
  "I": mask14("a d i l"),
  "J": mask14("b c d e"),
  "K": mask14("e f g1 j m"),
  "L": mask14("d e f"),
  "M": mask14("b c e f h j"),
  "N": mask14("b c e f h m"),
  "O": mask14("a b c d e f"),
  "P": mask14("a b e f g1 g2"),
  "Q": mask14("a b c d e f m"),
  "R": mask14("a b e f g1 g2 m"),
  "S": mask14("a c d f g1 g2"),
  "T": mask14("a i l"),
  "U": mask14("b c d e f"),
  "V": mask14("e f j k"),
  "W": mask14("b c e f k m"),
  "X": mask14("h j k m"),
  "Y": mask14("h j l"),
  "Z": mask14("a d j k"),
  "-": mask14("g1 g2"),
  " ": 0,
};

import type { SegmentKind } from "./geometry.ts";
export type { SegmentKind };

/**
 * The mask of one character (case-insensitive; space is blank). Throws RangeError for a
 * character the font has no shape for.
 */
export function segmentMask(c: string, kind: SegmentKind = 7): number {
  const font = kind === 14 ? FONT14 : FONT7;
  const m = font[c.toUpperCase()];
  if (m === undefined) {
    throw new RangeError(`no ${kind}-segment shape for ${JSON.stringify(c)}`);
  }
  return m;
}
