// The one place where the browser's units become the API's: text offsets (UTF-16 code units in
// the DOM, code points in the API), image geometry (pixels of the natural image in the
// annotators, 0..1 of the image in the API) and times (milliseconds here, seconds there).

/** The code-point offset of a UTF-16 offset into ``text``. */
export function utf16ToCodePoints(text: string, utf16: number): number {
  let points = 0;
  for (let i = 0; i < utf16 && i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // a high surrogate followed by a low one is one code point
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    points++;
  }
  return points;
}

/** The UTF-16 offset of a code-point offset into ``text``. */
export function codePointsToUtf16(text: string, points: number): number {
  let utf16 = 0;
  for (let p = 0; p < points && utf16 < text.length; p++) {
    const code = text.codePointAt(utf16) ?? 0;
    utf16 += code > 0xffff ? 2 : 1;
  }
  return utf16;
}

/** ``text[start:end]`` in code points, as the API and Python count. */
export function sliceCodePoints(text: string, start: number, end: number): string {
  return text.slice(codePointsToUtf16(text, start), codePointsToUtf16(text, end));
}

export interface Size {
  width: number;
  height: number;
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const round = (v: number) => Math.round(v * 1e6) / 1e6;

export function toRelative(px: number, extent: number): number {
  return round(clamp01(px / extent));
}

export function toPixels(rel: number, extent: number): number {
  return rel * extent;
}

export function secondsSince(startMs: number, nowMs: number = Date.now()): number {
  return Math.max(0, Math.round((nowMs - startMs) / 100) / 10);
}
