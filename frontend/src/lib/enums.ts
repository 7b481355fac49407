// The API's enums the UI lists in order (statuses in their lifecycle's order).
import type { MediaType, TaskStatus } from "./api";

export const TASK_STATUSES: TaskStatus[] = ["new", "prelabeled", "queued", "leased", "submitted", "in_review", "rejected", "approved", "exported", "archived"];
export const MEDIA_TYPES: MediaType[] = ["image", "text", "audio", "video", "document"];
