// The review queue: lease the next submitted task, see the annotators' results (side by side
// with their agreement when the project has overlap above 1), then approve, reject with a
// comment, or edit and approve.
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { Spinner } from "@/components/Spinner";
import { type Annotation, type Lease, type Result, unwrap } from "@/lib/api";
import { formatDateTime, formatDuration, formatPercent } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import { useCountdown, useHeartbeat } from "@/workspaces/lease";
import { WorkspaceView } from "@/workspaces/WorkspaceView";

/** Share of region labels two annotations have in common (a quick view; the API computes the real agreement). */
function overlap(a: Result[], b: Result[]): number {
  const labels = (rs: Result[]) =>
    rs.flatMap((r) =>
      "labels" in r ? r.labels.map((l) => `${r.control}:${l}`) : "boxes" in r ? r.boxes.map((x) => `${r.control}:${x.label}`) : "spans" in r ? r.spans.map((x) => `${r.control}:${x.label}:${x.start}:${x.end}`) : "polygons" in r ? r.polygons.map((x) => `${r.control}:${x.label}`) : [],
    );
  const x = labels(a);
  const y = labels(b);
  if (x.length === 0 && y.length === 0) return 1;
  const rest = [...y];
  let same = 0;
  for (const l of x) {
    const i = rest.indexOf(l);
    if (i >= 0) {
      same++;
      rest.splice(i, 1);
    }
  }
  return (2 * same) / (x.length + y.length);
}

export default function ReviewPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  const { api } = useSession();
  const path = { project_id: projectId };
  const project = useAsync(() => unwrap(api.GET("/projects/{project_id}", { params: { path } })), [projectId]);
  const [lease, setLease] = useState<Lease>();
  const [annotations, setAnnotations] = useState<Annotation[]>([]);
  const [loading, setLoading] = useState(true);
  const [lost, setLost] = useState(false);
  const [editing, setEditing] = useState<Result[] | null>(null);
  const [comment, setComment] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const task = lease?.task ?? undefined;

  const nextTask = useCallback(async () => {
    setLoading(true);
    setError(undefined);
    setLost(false);
    setEditing(null);
    setComment("");
    try {
      const got = await unwrap(api.POST("/projects/{project_id}/review/next", { params: { path } }));
      setLease(got);
      if (got.task) {
        const page = await unwrap(api.GET("/projects/{project_id}/tasks/{task_id}/annotations", { params: { path: { project_id: projectId, task_id: got.task.task_id }, query: { limit: 50 } } }));
        // this round's results: those submitted after the last rejection (if the task had one)
        const since = got.task.rework?.rejected_at;
        setAnnotations(page.items.filter((a) => !since || a.created_at > since));
      } else setAnnotations([]);
    } catch (failure) {
      setError(failure);
    } finally {
      setLoading(false);
    }
  }, [api, projectId]);

  useEffect(() => {
    void nextTask();
  }, [nextTask]);

  useHeartbeat(api, projectId, task && !lost ? task.task_id : undefined, lease?.lease_until, (l) => setLease((c) => (c ? { ...c, lease_until: l.lease_until } : c)), () => setLost(true));
  const left = useCountdown(lease?.lease_until);

  const decide = async (decision: "approve" | "reject") => {
    if (!task) return;
    setBusy(true);
    setError(undefined);
    try {
      await unwrap(
        api.POST("/projects/{project_id}/tasks/{task_id}/review", {
          params: { path: { project_id: projectId, task_id: task.task_id } },
          body: { decision, comment: comment || null, results: decision === "approve" && editing ? editing : null },
        }),
      );
      await nextTask();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  if (project.error) return <ErrorMessage error={project.error} />;
  if (!project.data || loading) return <Spinner label={t("common.loading")} />;
  if (!task)
    return (
      <section className="centered" data-testid="review-empty">
        <h1>{t("review.empty")}</h1>
        <ErrorMessage error={error} />
        <div className="actions">
          <button type="button" className="primary" onClick={() => void nextTask()} data-testid="review-refresh">{t("common.refresh")}</button>
          <Link className="button" to="/">{t("labeling.backToProjects")}</Link>
        </div>
      </section>
    );
  const config = project.data.label_config;
  const sideBySide = annotations.length > 1;
  return (
    <section className="review" data-testid="review" data-task-id={task.task_id}>
      <div className="page-head">
        <h1>{t("review.title", { project: project.data.name })}</h1>
        <span className="lease" data-testid="lease-countdown" role="timer">{t("review.leaseLeft", { time: formatDuration(i18n.language, left) })}</span>
      </div>
      {lost ? <div className="notice" role="alert" data-testid="lease-lost">{t("review.leaseLost")}</div> : null}
      <ErrorMessage error={error} />
      {task.rework ? (
        <div className="notice" data-testid="previous-rejection">
          {t("review.previousRejection", { reviewer: task.rework.reviewer, when: formatDateTime(i18n.language, task.rework.rejected_at) })}
          {task.rework.comment ? <blockquote>{task.rework.comment}</blockquote> : null}
        </div>
      ) : null}
      {sideBySide ? (
        <p data-testid="agreement">{t("review.agreement", { value: formatPercent(i18n.language, overlap(annotations[0].results as Result[], annotations[1].results as Result[])) })}</p>
      ) : null}
      <div className={sideBySide ? "side-by-side" : undefined}>
        {editing ? (
          <div>
            <h2>{t("review.editing")}</h2>
            <WorkspaceView key={`${task.task_id}-edit`} task={task} config={config} results={editing} onChange={setEditing} />
          </div>
        ) : (
          annotations.map((a) => (
            <div key={a.annotation_id} data-testid="review-annotation">
              <h2>{t("review.by", { author: a.author, when: formatDateTime(i18n.language, a.created_at) })}</h2>
              <WorkspaceView key={a.annotation_id} task={task} config={config} results={a.results as Result[]} />
            </div>
          ))
        )}
      </div>
      <label className="form">
        {t("review.comment")}
        <textarea value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} rows={3} data-testid="review-comment" />
      </label>
      <div className="actions">
        <button type="button" className="primary" disabled={busy || lost} onClick={() => void decide("approve")} data-testid="approve">
          {editing ? t("review.saveAndApprove") : t("review.approve")}
        </button>
        <button type="button" className="danger" disabled={busy || lost || !!editing} onClick={() => void decide("reject")} data-testid="reject">{t("review.reject")}</button>
        {!editing && annotations[0] ? (
          <button type="button" disabled={busy || lost} onClick={() => setEditing(annotations[0].results as Result[])} data-testid="edit">{t("review.edit")}</button>
        ) : null}
        {editing ? <button type="button" onClick={() => setEditing(null)}>{t("common.cancel")}</button> : null}
      </div>
    </section>
  );
}
