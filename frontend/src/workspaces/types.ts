// One interface for every media workspace. The labelling and review pages pick a workspace by
// the label configuration's control types (registry.ts); a workspace edits results in the
// API's units (0..1 geometry, code-point offsets) and converts through lib/units only.
import type { ComponentType } from "react";
import type { ControlSpec, LabelConfig, Result, TaskDetail } from "@/lib/api";

export interface FieldError {
  /** where in the request body the error is (``["results", 0, "boxes", 2]``), from the API's ``location`` */
  path: (string | number)[];
  message: string;
  /** the control it concerns, when the API names one */
  control?: string;
}

export interface WorkspaceProps {
  task: TaskDetail;
  config: LabelConfig;
  results: Result[];
  onChange?: (results: Result[]) => void; // absent: read-only
  /** regions a reviewer rejected (a rework): shown highlighted, not editable */
  rejected?: Result[];
  errors?: FieldError[];
}

export interface WorkspaceModule {
  id: string;
  /** Whether this workspace can show every control of the configuration. */
  handles: (controls: ControlSpec[]) => boolean;
  load: () => Promise<{ default: ComponentType<WorkspaceProps> }>;
}

export type { ControlSpec, Result };
