// Regions as the workspaces edit them: one list of labelled shapes with stable ids, converted
// to and from the API's results (one result per control) in the API's units.
import type { ControlSpec, FieldError, Result } from "./types";

export interface Region {
  id: string;
  control: string;
  label: string;
  /** the model's confidence while the region is an untouched pre-label; null once a person edits it */
  score: number | null;
  attributes: Record<string, string | number | boolean>;
  shape:
    | { kind: "box"; x: number; y: number; w: number; h: number; rotation: number }
    | { kind: "polygon"; points: [number, number][] }
    | { kind: "keypoints"; points: { name: string; x: number; y: number; visible: boolean }[] }
    | { kind: "span"; start: number; end: number; text: string | null };
}

let counter = 0;
export const newId = () => `r${Date.now().toString(36)}${(counter++).toString(36)}`;

export function regionsOf(results: Result[]): Region[] {
  const regions: Region[] = [];
  for (const r of results) {
    const base = (label: string, score: number | null | undefined, attributes: Record<string, string | number | boolean> | undefined) => ({
      id: newId(),
      control: r.control,
      label,
      score: score ?? null,
      attributes: attributes ?? {},
    });
    if ("boxes" in r)
      for (const b of r.boxes) regions.push({ ...base(b.label, b.score, b.attributes), shape: { kind: "box", x: b.x, y: b.y, w: b.w, h: b.h, rotation: b.rotation ?? 0 } });
    else if ("polygons" in r)
      for (const p of r.polygons) regions.push({ ...base(p.label, p.score, p.attributes), shape: { kind: "polygon", points: p.points as [number, number][] } });
    else if ("instances" in r)
      for (const k of r.instances)
        regions.push({ ...base(k.label, k.score, k.attributes), shape: { kind: "keypoints", points: k.points.map((p) => ({ name: p.name, x: p.x, y: p.y, visible: p.visible ?? true })) } });
    else if ("spans" in r)
      for (const s of r.spans) regions.push({ ...base(s.label, s.score, s.attributes), shape: { kind: "span", start: s.start, end: s.end, text: s.text ?? null } });
  }
  return regions;
}

/** The results of ``regions`` for the region controls, the other results kept as they are. */
export function resultsOf(regions: Region[], controls: ControlSpec[], others: Result[]): Result[] {
  const regionTypes = new Set(["bbox", "polygon", "keypoint", "ner"]);
  const kept = others.filter((r: Result) => !regionTypes.has((r.type as string | undefined) ?? controls.find((c) => c.name === r.control)?.type ?? ""));
  const out: Result[] = [...kept];
  for (const control of controls) {
    const mine = regions.filter((g) => g.control === control.name);
    if (mine.length === 0) continue;
    const common = (g: Region) => ({ label: g.label, score: g.score, attributes: g.attributes });
    if (control.type === "bbox")
      out.push({ control: control.name, type: "bbox", boxes: mine.flatMap((g) => (g.shape.kind === "box" ? [{ ...common(g), x: g.shape.x, y: g.shape.y, w: g.shape.w, h: g.shape.h, rotation: g.shape.rotation }] : [])) });
    else if (control.type === "polygon")
      out.push({ control: control.name, type: "polygon", polygons: mine.flatMap((g) => (g.shape.kind === "polygon" ? [{ ...common(g), points: g.shape.points }] : [])) });
    else if (control.type === "keypoint")
      out.push({ control: control.name, type: "keypoint", instances: mine.flatMap((g) => (g.shape.kind === "keypoints" ? [{ ...common(g), points: g.shape.points }] : [])) });
    else if (control.type === "ner")
      out.push({ control: control.name, type: "ner", spans: mine.flatMap((g) => (g.shape.kind === "span" ? [{ ...common(g), start: g.shape.start, end: g.shape.end, text: g.shape.text }] : [])) });
  }
  return out;
}

/** The region a 422 ``loc`` points at: body.results[i].boxes[j] → the j-th region of result i's control. */
export function regionAtLoc(loc: (string | number)[], results: Result[], regions: Region[]): Region | undefined {
  const at = loc.indexOf("results");
  if (at < 0) return undefined;
  const result = results[Number(loc[at + 1])];
  const index = Number(loc[at + 3]);
  if (!result || Number.isNaN(index)) return undefined;
  return regions.filter((g) => g.control === result.control)[index];
}

/** A submit's 422 problems, placed: on the region they concern when they name one, else on their
 * control (the API's ``control``, or the control of the result they point at). */
export function placeErrors(errors: FieldError[] | undefined, results: Result[], regions: Region[]) {
  const regionErrors = new Map<string, string>();
  const controlErrors: FieldError[] = [];
  for (const e of errors ?? []) {
    const region = regionAtLoc(e.path, results, regions);
    if (region) {
      regionErrors.set(region.id, e.message);
      continue;
    }
    const at = e.path.indexOf("results");
    const control = e.control ?? (at >= 0 ? results[Number(e.path[at + 1])]?.control : undefined) ?? "";
    controlErrors.push({ ...e, path: [control] });
  }
  return { regionErrors, controlErrors };
}
