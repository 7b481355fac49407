// The task list's filters: kept in the URL (a filtered view can be shared and survives reload),
// sent to GET /tasks as they are, and to a bulk job as its selection when the API can select by them.
import type { MediaType, Schemas, TaskStatus } from "@/lib/api";
import { MEDIA_TYPES, TASK_STATUSES as STATUSES } from "@/lib/enums";
export const FILTER_KEYS = ["status", "tag", "has_prediction", "media_type", "assignee", "order"] as const;

export interface Filters {
  status?: TaskStatus;
  tag?: string;
  has_prediction?: boolean;
  media_type?: MediaType;
  assignee?: string;
  order?: "desc";
}

export function filtersOf(params: URLSearchParams): Filters {
  const status = params.get("status");
  const media = params.get("media_type");
  const prediction = params.get("has_prediction");
  const filters: Filters = {};
  if (status && (STATUSES as string[]).includes(status)) filters.status = status as TaskStatus;
  if (media && (MEDIA_TYPES as string[]).includes(media)) filters.media_type = media as MediaType;
  if (prediction === "true" || prediction === "false") filters.has_prediction = prediction === "true";
  const tag = params.get("tag")?.trim();
  if (tag) filters.tag = tag.slice(0, 64);
  const assignee = params.get("assignee")?.trim();
  if (assignee) filters.assignee = assignee.slice(0, 128);
  if (params.get("order") === "desc") filters.order = "desc";
  return filters;
}

/** The bulk selection of "everything matching": undefined when the list filters by something a
 * bulk job cannot select by (prediction, assignee), so the selection is never wider than the list. */
export function bulkFilterOf(filters: Filters): Schemas["BulkFilter"] | undefined {
  if (filters.has_prediction !== undefined || filters.assignee !== undefined) return undefined;
  const out: Schemas["BulkFilter"] = {};
  if (filters.status) out.status = filters.status;
  if (filters.tag) out.tag = filters.tag;
  if (filters.media_type) out.media_type = filters.media_type;
  return out;
}

/** How many tasks match, when the project's counters say it (no filter, or status alone). */
export function knownTotal(filters: Filters, stats: Schemas["ProjectStats"] | undefined): number | undefined {
  if (!stats) return undefined;
  const { status, ...rest } = filters;
  delete rest.order;
  if (Object.keys(rest).length > 0) return undefined;
  if (!status) return stats.tasks;
  return ((stats.by_status ?? {}) as Record<string, number>)[status] ?? 0;
}
