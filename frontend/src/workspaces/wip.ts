// Work in progress, kept in the browser (localStorage) on every change, so a reload, a crash or
// a lost lease loses nothing. Removed once the API has the submission.
import type { Result } from "./types";

const PREFIX = "serval.wip.";
const MAX_AGE_MS = 14 * 24 * 3600 * 1000;

export interface Draft {
  results: Result[];
  startedAt: number;
  savedAt: number;
}

const key = (projectId: string, taskId: string) => `${PREFIX}${projectId}.${taskId}`;

export function loadDraft(projectId: string, taskId: string): Draft | undefined {
  try {
    const raw = localStorage.getItem(key(projectId, taskId));
    if (!raw) return undefined;
    const draft = JSON.parse(raw) as Draft;
    return Date.now() - draft.savedAt < MAX_AGE_MS ? draft : undefined;
  } catch {
    return undefined;
  }
}

export function saveDraft(projectId: string, taskId: string, draft: Draft): void {
  try {
    localStorage.setItem(key(projectId, taskId), JSON.stringify(draft));
  } catch {
    // storage full or disabled: the work stays in memory; the page says nothing is lost until it is submitted
  }
}

export function dropDraft(projectId: string, taskId: string): void {
  localStorage.removeItem(key(projectId, taskId));
}

/** Forget drafts older than two weeks. */
export function pruneDrafts(): void {
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (!k?.startsWith(PREFIX)) continue;
    try {
      const draft = JSON.parse(localStorage.getItem(k) ?? "") as Draft;
      if (Date.now() - draft.savedAt >= MAX_AGE_MS) localStorage.removeItem(k);
    } catch {
      localStorage.removeItem(k);
    }
  }
}
