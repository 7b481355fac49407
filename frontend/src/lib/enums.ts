// The API's enums the UI lists, in order (statuses in their lifecycle's order). Records keyed by
// the schema's enums, so a value added to the API fails the typecheck here.
import type { MediaType, TaskStatus } from "./api";

const STATUS_ORDER: Record<TaskStatus, number> = {
  new: 0,
  prelabeled: 1,
  queued: 2,
  leased: 3,
  submitted: 4,
  in_review: 5,
  rejected: 6,
  approved: 7,
  exported: 8,
  archived: 9,
};
const MEDIA: Record<MediaType, true> = { image: true, text: true, audio: true, video: true, document: true };

export const TASK_STATUSES = (Object.keys(STATUS_ORDER) as TaskStatus[]).sort((a, b) => STATUS_ORDER[a] - STATUS_ORDER[b]);
export const MEDIA_TYPES = Object.keys(MEDIA) as MediaType[];
