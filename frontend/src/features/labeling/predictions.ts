import type { Result, TaskDetail } from "@/lib/api";

/** The best prediction's results as pre-labels: each region keeps a score, which marks it. */
export function prelabelsOf(task: TaskDetail): Result[] {
  const best = [...(task.predictions ?? [])].sort((a, b) => b.score - a.score)[0];
  if (!best) return [];
  const mark = <T extends { score?: number | null }>(r: T): T => ({ ...r, score: r.score ?? best.score });
  return (best.results ?? []).map((r) => {
    if ("boxes" in r) return { ...r, boxes: r.boxes.map(mark) };
    if ("polygons" in r) return { ...r, polygons: r.polygons.map(mark) };
    if ("instances" in r) return { ...r, instances: r.instances.map(mark) };
    if ("spans" in r) return { ...r, spans: r.spans.map(mark) };
    return r;
  }) as Result[];
}

/** What is submitted: pre-labels still in the results are the annotator's now (no score). */
export function withoutScores(results: Result[]): Result[] {
  const clear = <T extends { score?: number | null }>(r: T): T => ({ ...r, score: null });
  return results.map((r) => {
    if ("boxes" in r) return { ...r, boxes: r.boxes.map(clear) };
    if ("polygons" in r) return { ...r, polygons: r.polygons.map(clear) };
    if ("instances" in r) return { ...r, instances: r.instances.map(clear) };
    if ("spans" in r) return { ...r, spans: r.spans.map(clear) };
    return r;
  }) as Result[];
}
