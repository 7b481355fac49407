// Regions <-> Annotorious annotations. Annotorious works in the natural image's pixels; the
// regions are in the API's 0..1 units (lib/units converts).
import type { ImageAnnotation } from "@annotorious/annotorious";
import { toPixels, toRelative, type Size } from "@/lib/units";
import type { Region } from "../regions";

export function toAnnotation(region: Region, size: Size): ImageAnnotation | undefined {
  const body = [{ id: `${region.id}-label`, annotation: region.id, purpose: "tagging", value: region.label }];
  if (region.shape.kind === "box") {
    const x = toPixels(region.shape.x, size.width);
    const y = toPixels(region.shape.y, size.height);
    const w = toPixels(region.shape.w, size.width);
    const h = toPixels(region.shape.h, size.height);
    return {
      id: region.id,
      bodies: body,
      target: { annotation: region.id, selector: { type: "RECTANGLE", geometry: { x, y, w, h, bounds: { minX: x, minY: y, maxX: x + w, maxY: y + h } } } },
    } as unknown as ImageAnnotation;
  }
  if (region.shape.kind === "polygon") {
    const points = region.shape.points.map(([px, py]) => [toPixels(px, size.width), toPixels(py, size.height)]);
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    return {
      id: region.id,
      bodies: body,
      target: {
        annotation: region.id,
        selector: { type: "POLYGON", geometry: { points, bounds: { minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) } } },
      },
    } as unknown as ImageAnnotation;
  }
  return undefined;
}

interface Geometry {
  x?: number;
  y?: number;
  w?: number;
  h?: number;
  points?: [number, number][];
}

/** The shape of an Annotorious annotation, in 0..1 of the image. */
export function shapeOf(annotation: ImageAnnotation, size: Size): Region["shape"] | undefined {
  const selector = annotation.target.selector as unknown as { type: string; geometry: Geometry };
  const g = selector.geometry;
  if (selector.type === "RECTANGLE" && g.x !== undefined && g.y !== undefined && g.w !== undefined && g.h !== undefined) {
    const x = toRelative(Math.max(0, g.x), size.width);
    const y = toRelative(Math.max(0, g.y), size.height);
    const w = Math.min(toRelative(g.w, size.width), 1 - x);
    const h = Math.min(toRelative(g.h, size.height), 1 - y);
    return { kind: "box", x, y, w: Math.round(w * 1e6) / 1e6, h: Math.round(h * 1e6) / 1e6, rotation: 0 };
  }
  if (selector.type === "POLYGON" && g.points) {
    return { kind: "polygon", points: g.points.map(([px, py]) => [toRelative(px, size.width), toRelative(py, size.height)]) };
  }
  return undefined;
}
