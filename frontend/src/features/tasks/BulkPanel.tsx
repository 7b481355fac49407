// A bulk action on the selection: it starts the API's async bulk job (POST /bulk, one
// Idempotency-Key per click, so a retried request never starts a second job) and follows it
// until it is done, with the counts done and failed and the first failures' reasons.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { ErrorMessage } from "@/components/ErrorMessage";
import { ProgressBar } from "@/components/ProgressBar";
import { type Schemas, unwrap } from "@/lib/api";
import { formatNumber } from "@/lib/format";
import { commaList } from "@/lib/lists";
import { useSession } from "@/lib/session";
import { useAsync, useInterval } from "@/lib/useAsync";

export type Selection = Schemas["BulkSelection"];
type Operation = Schemas["BulkOperation"];
type Job = Schemas["BulkJobView"];

const OPERATIONS: Operation[] = ["tag", "untag", "set_priority", "assign", "unassign", "requeue", "archive", "delete", "accept_predictions"];
const DESTRUCTIVE = new Set<Operation>(["archive", "delete"]);
const SHOWN_FAILURES = 20;

function tagsOf(text: string): string[] {
  return [...new Set(commaList(text))];
}

export function BulkPanel({ projectId, selection, onDone }: { projectId: string; selection: Selection; onDone: () => void }) {
  const { t, i18n } = useTranslation();
  const { api } = useSession();
  const [operation, setOperation] = useState<Operation>("tag");
  const [tags, setTags] = useState("");
  const [priority, setPriority] = useState("0");
  const [userId, setUserId] = useState("");
  const [job, setJob] = useState<Job>();
  const [error, setError] = useState<unknown>();
  const [problem, setProblem] = useState("");
  const [starting, setStarting] = useState(false);
  const path = { project_id: projectId };
  const members = useAsync(() => (operation === "assign" ? unwrap(api.GET("/projects/{project_id}/members", { params: { path, query: { limit: 200 } } })) : Promise.resolve(undefined)), [operation === "assign"]);
  const running = job !== undefined && (job.status === "queued" || job.status === "running");
  const n = (v: number) => formatNumber(i18n.language, v);

  useInterval(
    () => {
      if (!job) return;
      unwrap(api.GET("/projects/{project_id}/bulk/{bulk_id}", { params: { path: { ...path, bulk_id: job.job_id } } })).then(
        (next) => {
          setJob(next);
          if (next.status === "succeeded" || next.status === "failed") onDone();
        },
        setError,
      );
    },
    1000,
    running,
  );

  const start = async () => {
    setProblem("");
    setError(undefined);
    const body: Schemas["BulkCreate"] = { operation, selection };
    if (operation === "tag" || operation === "untag") {
      const list = tagsOf(tags);
      if (list.length === 0) return setProblem(t("bulk.needTags"));
      body.tags = list;
    }
    if (operation === "set_priority") {
      const value = Number(priority);
      if (!Number.isInteger(value) || Math.abs(value) > 1_000_000) return setProblem(t("bulk.badPriority"));
      body.priority = value;
    }
    if (operation === "assign") {
      if (!userId) return setProblem(t("bulk.needUser"));
      body.user_id = userId;
    }
    if (DESTRUCTIVE.has(operation) && !window.confirm(t("bulk.confirm", { operation: t(`bulk.op.${operation}`) }))) return;
    setStarting(true);
    try {
      const started = await unwrap(api.POST("/projects/{project_id}/bulk", { params: { path, header: { "idempotency-key": crypto.randomUUID() } }, body }));
      setJob(started);
    } catch (failure) {
      setError(failure);
    } finally {
      setStarting(false);
    }
  };

  const processed = job?.processed ?? 0;
  const counts = job?.counts ?? { done: 0, failed: 0 };
  const failures = job?.failures ?? [];
  const total = job?.total ?? 0;
  return (
    <div className="bulk card" data-testid="bulk-panel">
      <div className="bulk-form">
        <label>
          {t("bulk.action")}
          <select data-testid="bulk-action" value={operation} disabled={running} onChange={(e) => setOperation(e.target.value as Operation)}>
            {OPERATIONS.map((op) => (
              <option key={op} value={op}>
                {t(`bulk.op.${op}`)}
              </option>
            ))}
          </select>
        </label>
        {operation === "tag" || operation === "untag" ? (
          <label>
            {t("bulk.tags")}
            <input data-testid="bulk-tag" value={tags} placeholder={t("bulk.tagsHint")} onChange={(e) => setTags(e.target.value)} />
          </label>
        ) : null}
        {operation === "set_priority" ? (
          <label>
            {t("bulk.priority")}
            <input data-testid="bulk-priority" type="number" step={1} value={priority} onChange={(e) => setPriority(e.target.value)} />
          </label>
        ) : null}
        {operation === "assign" ? (
          <label>
            {t("bulk.assignee")}
            <select data-testid="bulk-user" value={userId} onChange={(e) => setUserId(e.target.value)}>
              <option value="">{t("bulk.pickUser")}</option>
              {(members.data?.items ?? [])
                .filter((m) => m.role === "annotator" || m.role === "manager")
                .map((m) => (
                  <option key={m.user_id} value={m.user_id}>
                    {m.email ?? m.user_id}
                  </option>
                ))}
            </select>
          </label>
        ) : null}
        <button type="button" className="primary" data-testid="bulk-run" disabled={running || starting} onClick={() => void start()}>
          {t("bulk.run")}
        </button>
      </div>
      {problem ? (
        <p className="field-error" role="alert">
          {problem}
        </p>
      ) : null}
      <ErrorMessage error={error} />
      {job ? (
        <div className="bulk-status" data-testid="bulk-status" data-status={job.status} data-done={counts.done} data-failed={counts.failed}>
          <ProgressBar value={processed} max={total || 1} label={t("bulk.progress")} />
          <p>
            {t(`bulk.status.${job.status}`)} · {t("bulk.counts", { done: n(counts.done), failed: n(counts.failed), total: total ? n(total) : "…" })}
          </p>
          {job.error ? <p className="error">{job.error}</p> : null}
          {failures.length > 0 ? (
            <ul className="bulk-failures" data-testid="bulk-failures">
              {failures.slice(0, SHOWN_FAILURES).map((f) => (
                <li key={f.task_id}>
                  <code>{f.task_id}</code>: {f.reason}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
