// The labelling page: lease the next task, label it in its workspace, submit, and the next task
// (leased and its media loaded while the user worked) shows at once.
import { useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { Spinner } from "@/components/Spinner";
import { type Api, ApiError, type Lease, type Project, type Result, type TaskDetail, unwrap } from "@/lib/api";
import { formatDuration } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import { secondsSince } from "@/lib/units";
import { useCountdown, useHeartbeat } from "@/workspaces/lease";
import { typingInto } from "@/workspaces/results";
import type { FieldError } from "@/workspaces/types";
import { dropDraft, loadDraft, pruneDrafts, saveDraft } from "@/workspaces/wip";
import { preloadWorkspace, WorkspaceView } from "@/workspaces/WorkspaceView";
import { prelabelsOf, withoutScores } from "./predictions";

interface Held {
  task: TaskDetail;
  leaseUntil: number;
}

const held = (lease: Lease): Held | undefined => (lease.task && lease.lease_until ? { task: lease.task, leaseUntil: lease.lease_until } : undefined);
const remembered = (projectId: string, slot: "current" | "next") => `serval.lease.${slot}.${projectId}`;

function preloadMedia(task: TaskDetail): void {
  for (const link of Object.values(task.media ?? {})) {
    if (task.media_type === "image" && link) new Image().src = link.url;
  }
}

async function resume(api: Api, projectId: string, taskId: string | null): Promise<Held | undefined> {
  if (!taskId) return undefined;
  try {
    return held(await unwrap(api.POST("/projects/{project_id}/tasks/{task_id}/heartbeat", { params: { path: { project_id: projectId, task_id: taskId } } })));
  } catch {
    return undefined;
  }
}

export default function LabelingPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  const { api } = useSession();
  const path = { project_id: projectId };
  const project = useAsync(() => unwrap(api.GET("/projects/{project_id}", { params: { path } })), [projectId]);
  const [current, setCurrent] = useState<Held>();
  const [state, setState] = useState<"loading" | "working" | "empty" | "lost" | "released">("loading");
  const [results, setResults] = useState<Result[]>([]);
  const [restored, setRestored] = useState(false);
  const [startedAt, setStartedAt] = useState(Date.now());
  const [error, setError] = useState<unknown>();
  const [fieldErrors, setFieldErrors] = useState<FieldError[]>([]);
  const [busy, setBusy] = useState(false);
  const next = useRef<Held | undefined>(undefined);
  const prefetching = useRef<Promise<void> | null>(null);

  const show = useCallback(
    (lease: Held | undefined, config?: Project) => {
      setError(undefined);
      setFieldErrors([]);
      if (!lease) {
        setCurrent(undefined);
        sessionStorage.removeItem(remembered(projectId, "current"));
        setState("empty");
        return;
      }
      sessionStorage.setItem(remembered(projectId, "current"), lease.task.task_id);
      const draft = loadDraft(projectId, lease.task.task_id);
      const rework = lease.task.rework?.rejected_annotations?.[0]?.results;
      setResults(draft?.results ?? (rework as Result[] | undefined) ?? prelabelsOf(lease.task));
      setRestored(!!draft);
      setStartedAt(draft?.startedAt ?? Date.now());
      setCurrent(lease);
      setState("working");
      if (config) preloadWorkspace({ config: config.label_config, task: lease.task });
    },
    [projectId],
  );

  // lease the task after this one while the user works on this one, and load its media
  const prefetch = useCallback(() => {
    if (next.current || prefetching.current) return;
    prefetching.current = (async () => {
      try {
        const rememberedNext = await resume(api, projectId, sessionStorage.getItem(remembered(projectId, "next")));
        const lease = rememberedNext ?? held(await unwrap(api.POST("/projects/{project_id}/next", { params: { path } })));
        if (lease) {
          next.current = lease;
          sessionStorage.setItem(remembered(projectId, "next"), lease.task.task_id);
          preloadMedia(lease.task);
        }
      } catch {
        // the next task is leased when it is needed instead
      } finally {
        prefetching.current = null;
      }
    })();
  }, [api, projectId]);

  const advance = useCallback(async () => {
    setState("loading");
    if (prefetching.current) await prefetching.current;
    let lease = next.current;
    next.current = undefined;
    sessionStorage.removeItem(remembered(projectId, "next"));
    if (!lease) {
      try {
        lease = held(await unwrap(api.POST("/projects/{project_id}/next", { params: { path } })));
      } catch (failure) {
        setError(failure);
        setState("empty");
        return;
      }
    }
    show(lease, project.data);
  }, [api, projectId, show, project.data]);

  // the first task: the one this tab held before a reload, or the next one
  useEffect(() => {
    if (!project.data) return;
    pruneDrafts();
    let live = true;
    void (async () => {
      const again = await resume(api, projectId, sessionStorage.getItem(remembered(projectId, "current")));
      if (!live) return;
      if (again) show(again, project.data);
      else await advance();
    })();
    return () => {
      live = false;
    };
  }, [project.data]);

  // every task shown starts the prefetch of the one after it (keyed by the task: showing a
  // prefetched task goes loading → working in one render, which a state change alone would miss)
  const shownTask = current?.task.task_id;
  useEffect(() => {
    if (state === "working") prefetch();
  }, [state, shownTask, prefetch]);

  // a prefetched task the user will not get to goes back to the queue when they leave the page
  useEffect(
    () => () => {
      const pending = next.current;
      if (pending) void api.POST("/projects/{project_id}/tasks/{task_id}/release", { params: { path: { project_id: projectId, task_id: pending.task.task_id } } });
      sessionStorage.removeItem(remembered(projectId, "next"));
    },
    [api, projectId],
  );

  const onChange = useCallback(
    (next: Result[]) => {
      setResults(next);
      if (current) saveDraft(projectId, current.task.task_id, { results: next, startedAt, savedAt: Date.now() });
    },
    [current, projectId, startedAt],
  );

  useHeartbeat(
    api,
    projectId,
    state === "working" ? current?.task.task_id : undefined,
    current?.leaseUntil,
    (lease) => setCurrent((c) => (c && lease.lease_until ? { ...c, leaseUntil: lease.lease_until } : c)),
    () => setState("lost"),
  );
  const left = useCountdown(current?.leaseUntil);

  const submit = useCallback(async () => {
    if (!current || !project.data || busy) return;
    setBusy(true);
    setError(undefined);
    setFieldErrors([]);
    try {
      await unwrap(
        api.POST("/projects/{project_id}/tasks/{task_id}/submit", {
          params: { path: { project_id: projectId, task_id: current.task.task_id } },
          body: { results: withoutScores(results), lead_time_s: secondsSince(startedAt), label_config_version: project.data.label_config.version ?? null },
        }),
      );
      dropDraft(projectId, current.task.task_id);
      await advance();
    } catch (failure) {
      setError(failure);
      if (failure instanceof ApiError) {
        if (failure.code === "lease_not_held") setState("lost");
        setFieldErrors(failure.details.map((d) => ({ path: (d.location ?? []).filter((p) => p !== "body"), message: d.message ?? "", control: d.control ?? undefined })));
      }
    } finally {
      setBusy(false);
    }
  }, [current, project.data, busy, api, projectId, results, startedAt, advance]);

  const giveBack = useCallback(
    async (how: "skip" | "release") => {
      if (!current) return;
      setBusy(true);
      try {
        const route = how === "skip" ? "/projects/{project_id}/tasks/{task_id}/skip" : "/projects/{project_id}/tasks/{task_id}/release";
        const call = unwrap(api.POST(route, { params: { path: { project_id: projectId, task_id: current.task.task_id } } }));
        if (how === "skip" && next.current) {
          // the next task is already held: show it now; the skip goes on meanwhile (if it
          // fails, nothing is lost: the task goes back to the queue when its lease ends)
          dropDraft(projectId, current.task.task_id);
          await advance();
          await call.catch(() => undefined);
          return;
        }
        await call;
        dropDraft(projectId, current.task.task_id);
        if (how === "skip") await advance();
        else {
          sessionStorage.removeItem(remembered(projectId, "current"));
          setCurrent(undefined);
          setState("released");
        }
      } catch (failure) {
        setError(failure);
      } finally {
        setBusy(false);
      }
    },
    [current, api, projectId, advance],
  );

  // hotkeys: Ctrl+Enter submits, Ctrl+Shift+S skips
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (state !== "working") return;
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        void submit();
      } else if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === "s" && !typingInto(event)) {
        event.preventDefault();
        void giveBack("skip");
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [state, submit, giveBack]);

  if (project.error) return <ErrorMessage error={project.error} />;
  if (!project.data || state === "loading") return <Spinner label={t("labeling.loading")} />;
  if (state === "empty" || state === "released")
    return (
      <section className="centered" data-testid="queue-empty">
        <h1>{state === "empty" ? t("labeling.empty") : t("labeling.released")}</h1>
        <ErrorMessage error={error} />
        <div className="actions">
          <button type="button" className="primary" onClick={() => void advance()} data-testid="get-next">{t("labeling.getNext")}</button>
          <Link className="button" to="/">{t("labeling.backToProjects")}</Link>
        </div>
      </section>
    );
  if (!current) return null;
  const rework = current.task.rework;
  return (
    <section className="labeling" data-testid="labeling" data-task-id={current.task.task_id}>
      <div className="page-head">
        <h1 translate="no">{project.data.name}</h1>
        <span className={left < 120 ? "lease lease-low" : "lease"} data-testid="lease-countdown" data-seconds={left} role="timer">
          {t("labeling.leaseLeft", { time: formatDuration(i18n.language, left) })}
        </span>
      </div>
      {state === "lost" ? (
        <div className="notice" role="alert" data-testid="lease-lost">
          <strong>{t("labeling.leaseLost")}</strong> {t("labeling.workKept")}
          <div className="actions">
            <button type="button" onClick={() => void advance()} data-testid="get-next">{t("labeling.getNext")}</button>
          </div>
        </div>
      ) : null}
      {restored ? <div className="notice" data-testid="draft-restored">{t("labeling.restored")}</div> : null}
      {rework ? (
        <div className="notice" data-testid="rework">
          <strong>{t("labeling.rework", { reviewer: rework.reviewer })}</strong>
          {rework.comment ? <blockquote data-testid="rework-comment">{rework.comment}</blockquote> : null}
        </div>
      ) : null}
      {project.data.label_config.instructions ? <details className="instructions"><summary>{t("labeling.instructions")}</summary><p>{project.data.label_config.instructions}</p></details> : null}
      <ErrorMessage error={error} />
      <WorkspaceView
        key={current.task.task_id}
        task={current.task}
        config={project.data.label_config}
        results={results}
        onChange={onChange}
        rejected={(rework?.rejected_annotations?.[0]?.results as Result[] | undefined) ?? []}
        errors={fieldErrors}
      />
      <div className="actions sticky-actions">
        <button type="button" className="primary" disabled={busy || state !== "working"} onClick={() => void submit()} data-testid="submit">
          {t("labeling.submit")} <kbd>{t("labeling.keySubmit")}</kbd>
        </button>
        <button type="button" disabled={busy || state !== "working"} onClick={() => void giveBack("skip")} data-testid="skip">
          {t("labeling.skip")} <kbd>{t("labeling.keySkip")}</kbd>
        </button>
        <button type="button" disabled={busy || state !== "working"} onClick={() => void giveBack("release")} data-testid="release">
          {t("labeling.release")}
        </button>
      </div>
    </section>
  );
}
