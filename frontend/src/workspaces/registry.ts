// Workspaces by the control types they handle. Adding a media type adds a folder and a line here.
import type { ControlSpec, WorkspaceModule } from "./types";

const only = (types: string[]) => (controls: ControlSpec[]) =>
  controls.length > 0 && controls.every((c) => types.includes(c.type));

export const WORKSPACES: WorkspaceModule[] = [
  { id: "image", handles: only(["bbox", "polygon", "keypoint", "classification"]), load: () => import("./image/ImageWorkspace") },
  { id: "text", handles: only(["ner", "classification"]), load: () => import("./text/TextWorkspace") },
];

export function workspaceFor(controls: ControlSpec[], mediaType: string): WorkspaceModule | undefined {
  const candidates = WORKSPACES.filter((w) => w.handles(controls));
  return candidates.find((w) => w.id === mediaType) ?? candidates[0];
}
