import type { Schemas } from "@/lib/api";

type Stats = Schemas["ProjectStats"];
const DONE = ["approved", "exported"];
const LABELLED = ["submitted", "in_review", "rejected", ...DONE];

/** Counts from the project's counters: tasks, labelled (submitted or later) and done (approved). */
export function progressOf(stats: Stats) {
  const by = stats.by_status as Record<string, number>;
  const sum = (names: string[]) => names.reduce((n, s) => n + (by[s] ?? 0), 0);
  const archived = by.archived ?? 0;
  return { tasks: Math.max(0, stats.tasks - archived), labelled: sum(LABELLED), done: sum(DONE) };
}
