// One task: its data and media (the workspace, read-only), its annotations, its predictions and
// its history (the audit records of the task, newest first, a page at a time).
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { When } from "@/components/When";
import { Spinner } from "@/components/Spinner";
import { type Result, type Schemas, unwrap } from "@/lib/api";
import { formatDateTime, formatNumber, formatPercent } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import { WorkspaceView } from "@/workspaces/WorkspaceView";

type TaskEvent = Schemas["TaskEvent"];

function Json({ value, testId }: { value: unknown; testId?: string }) {
  return (
    <pre className="json" data-testid={testId}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

function History({ projectId, taskId }: { projectId: string; taskId: string }) {
  const { t } = useTranslation();
  const { api } = useSession();
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>();
  const [error, setError] = useState<unknown>();
  const load = (from?: string | null) =>
    unwrap(api.GET("/projects/{project_id}/tasks/{task_id}/history", { params: { path: { project_id: projectId, task_id: taskId }, query: { limit: 50, cursor: from ?? undefined } } })).then(
      (page) => {
        setEvents((now) => (from ? [...now, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
      },
      setError,
    );
  const first = useAsync(() => load(), [projectId, taskId]);
  if (first.loading && events.length === 0) return <Spinner label={t("common.loading")} />;
  return (
    <>
      <ErrorMessage error={error} />
      <table className="table" data-testid="task-history">
        <thead>
          <tr>
            <th>{t("taskDetail.when")}</th>
            <th>{t("taskDetail.who")}</th>
            <th>{t("taskDetail.what")}</th>
            <th>{t("taskDetail.change")}</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.audit_id} data-testid="history-row" data-action={e.action}>
              <td><When iso={e.at} /></td>
              <td translate="no">
                {e.actor_id} <span className="muted">({e.actor_project_role ?? e.actor_role})</span>
              </td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>
                <details>
                  <summary>{t("taskDetail.beforeAfter")}</summary>
                  <div className="side-by-side">
                    <Json value={e.before} />
                    <Json value={e.after} />
                  </div>
                </details>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {events.length === 0 ? <p className="muted">{t("taskDetail.noHistory")}</p> : null}
      {cursor ? (
        <button type="button" onClick={() => void load(cursor)}>
          {t("taskDetail.more")}
        </button>
      ) : null}
    </>
  );
}

export default function TaskDetailPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "", taskId = "" } = useParams();
  const { api } = useSession();
  const path = { project_id: projectId, task_id: taskId };
  const project = useAsync(() => unwrap(api.GET("/projects/{project_id}", { params: { path: { project_id: projectId } } })), [projectId]);
  const task = useAsync(() => unwrap(api.GET("/projects/{project_id}/tasks/{task_id}", { params: { path } })), [projectId, taskId]);
  const annotations = useAsync(() => unwrap(api.GET("/projects/{project_id}/tasks/{task_id}/annotations", { params: { path, query: { limit: 100 } } })), [projectId, taskId]);
  const [shown, setShown] = useState<string>();
  const n = (v: number) => formatNumber(i18n.language, v);
  const d = task.data;
  const config = project.data?.label_config;
  const items = annotations.data?.items ?? [];
  const chosen = items.find((a) => a.annotation_id === shown) ?? items.find((a) => a.annotation_id === d?.accepted_annotation_id) ?? items[0];
  return (
    <section data-testid="task-detail" data-task-id={taskId}>
      <p>
        <Link to={`/projects/${encodeURIComponent(projectId)}/tasks`}>{t("taskDetail.back")}</Link>
      </p>
      <h1>{t("taskDetail.title", { id: d?.external_id ?? taskId })}</h1>
      <ErrorMessage error={task.error ?? project.error} />
      {!d ? <Spinner label={t("common.loading")} /> : null}
      {d ? (
        <>
          <dl className="facts">
            <dt>{t("tasks.col.status")}</dt>
            <dd data-testid="task-status">{t(`taskStatus.${d.status}`)}</dd>
            <dt>{t("tasks.col.media")}</dt>
            <dd>{t(`mediaTypes.${d.media_type}`)}</dd>
            <dt>{t("tasks.col.tags")}</dt>
            <dd translate="no">{(d.tags ?? []).join(", ") || "—"}</dd>
            <dt>{t("tasks.col.priority")}</dt>
            <dd>{n(d.priority ?? 0)}</dd>
            <dt>{t("tasks.col.created")}</dt>
            <dd><When iso={d.created_at} /></dd>
            <dt>{t("taskDetail.updated")}</dt>
            <dd><When iso={d.updated_at} /></dd>
          </dl>
          {config ? <WorkspaceView key={chosen?.annotation_id ?? "none"} task={d} config={config} results={(chosen?.results ?? []) as Result[]} /> : null}
          <h2>{t("taskDetail.data")}</h2>
          <Json value={{ data: d.data, metadata: d.metadata }} testId="task-data" />
        </>
      ) : null}
      <h2>{t("taskDetail.annotations")}</h2>
      <ErrorMessage error={annotations.error} />
      {items.length === 0 && !annotations.loading ? <p className="muted">{t("taskDetail.noAnnotations")}</p> : null}
      <ul className="annotation-list" data-testid="task-annotations">
        {items.map((a) => (
          <li key={a.annotation_id} data-testid="annotation" data-annotation-id={a.annotation_id}>
            <button type="button" className="link" aria-pressed={chosen?.annotation_id === a.annotation_id} onClick={() => setShown(a.annotation_id)}>
              {t("taskDetail.annotationBy", { user: a.author, at: formatDateTime(i18n.language, a.created_at) })}
            </button>
            {a.annotation_id === d?.accepted_annotation_id ? <span className="badge">{t("taskDetail.accepted")}</span> : null}
            {a.source === "prediction" ? <span className="badge badge-prediction">{t("tasks.predicted")}</span> : null}
          </li>
        ))}
      </ul>
      {d && (d.predictions ?? []).length > 0 ? (
        <>
          <h2>{t("taskDetail.predictions")}</h2>
          <ul data-testid="task-predictions">
            {(d.predictions ?? []).map((p, i) => (
              <li key={i}>
                <span className="badge badge-prediction">{p.model_version}</span> {t("taskDetail.score", { score: formatPercent(i18n.language, p.score) })}
                <Json value={p.results} />
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <h2>{t("taskDetail.history")}</h2>
      <History projectId={projectId} taskId={taskId} />
    </section>
  );
}
