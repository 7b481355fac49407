// The workspace for a task, chosen by the label configuration's control types, loaded on demand.
import { type ComponentType, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Spinner } from "@/components/Spinner";
import { workspaceFor } from "./registry";
import type { WorkspaceProps } from "./types";

const loaded = new Map<string, ComponentType<WorkspaceProps>>();

/** Start loading the workspace a configuration needs (prefetch, before the task arrives). */
export function preloadWorkspace(props: Pick<WorkspaceProps, "config" | "task">): void {
  const module = workspaceFor(props.config.controls, props.task.media_type);
  if (module && !loaded.has(module.id)) void module.load().then((m) => loaded.set(module.id, m.default));
}

export function WorkspaceView(props: WorkspaceProps) {
  const { t } = useTranslation();
  const module = workspaceFor(props.config.controls, props.task.media_type);
  const [Component, setComponent] = useState<ComponentType<WorkspaceProps> | undefined>(() => (module ? loaded.get(module.id) : undefined));
  useEffect(() => {
    if (!module) return;
    const ready = loaded.get(module.id);
    if (ready) {
      setComponent(() => ready);
      return;
    }
    let live = true;
    void module.load().then((m) => {
      loaded.set(module.id, m.default);
      if (live) setComponent(() => m.default);
    });
    return () => {
      live = false;
    };
  }, [module]);
  if (!module) return <p className="error">{t("workspace.unsupported")}</p>;
  if (!Component) return <Spinner label={t("common.loading")} />;
  return <Component {...props} />;
}
