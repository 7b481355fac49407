// Dataset exports: choose a format and filters, start the export job, watch it, download the
// file. The jobs started here are remembered in the browser (per project), so a reload keeps them;
// each download link is fresh (presigned) from the job's latest state.
import { type FormEvent, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { When } from "@/components/When";
import { type JobView, type Schemas, type TaskStatus, unwrap } from "@/lib/api";
import { formatNumber } from "@/lib/format";
import { commaList } from "@/lib/lists";
import { useSession } from "@/lib/session";
import { useInterval } from "@/lib/useAsync";
import { TASK_STATUSES as STATUSES } from "@/lib/enums";

const FORMATS: Schemas["ExportFormat"][] = ["json", "jsonl", "csv", "coco", "yolo", "voc", "conll", "groundtruth"];
const KEPT = 20;

const storageKey = (projectId: string) => `serval.exports.${projectId}`;

function remembered(projectId: string): string[] {
  try {
    const ids: unknown = JSON.parse(localStorage.getItem(storageKey(projectId)) ?? "[]");
    return Array.isArray(ids) ? ids.filter((i): i is string => typeof i === "string").slice(0, KEPT) : [];
  } catch {
    return [];
  }
}

/** "2026-12-01" (a date input, the user's day) as the ISO time of that local midnight. */
function dayStart(value: string): string | undefined {
  return value ? new Date(`${value}T00:00:00`).toISOString() : undefined;
}

export default function ExportPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  const { api } = useSession();
  const path = { project_id: projectId };
  const [format, setFormat] = useState<Schemas["ExportFormat"]>("json");
  const [approvedOnly, setApprovedOnly] = useState(false);
  const [statuses, setStatuses] = useState<TaskStatus[]>([]);
  const [tags, setTags] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [jobs, setJobs] = useState<JobView[]>([]);
  const [error, setError] = useState<unknown>();
  const [starting, setStarting] = useState(false);

  const refresh = (ids: string[]) =>
    Promise.all(ids.map((id) => unwrap(api.GET("/projects/{project_id}/exports/{export_id}", { params: { path: { ...path, export_id: id } } })).catch(() => undefined))).then((found) =>
      setJobs(found.filter((j): j is JobView => j !== undefined)),
    );
  useEffect(() => {
    void refresh(remembered(projectId));
  }, [projectId]);
  const running = jobs.some((j) => j.status === "queued" || j.status === "running");
  useInterval(() => void refresh(jobs.map((j) => j.job_id)), 1500, running);

  const start = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    const filters: Schemas["ExportFilters"] = { approved_only: approvedOnly };
    if (statuses.length > 0) filters.status = statuses;
    const tagList = [...new Set(commaList(tags))];
    if (tagList.length > 0) filters.tags = tagList;
    if (from) filters.created_from = dayStart(from);
    if (to) filters.created_to = dayStart(to);
    setStarting(true);
    try {
      const job = await unwrap(api.POST("/projects/{project_id}/exports", { params: { path }, body: { format, filters } }));
      const next = [job, ...jobs.filter((j) => j.job_id !== job.job_id)].slice(0, KEPT);
      localStorage.setItem(storageKey(projectId), JSON.stringify(next.map((j) => j.job_id)));
      setJobs(next);
    } catch (failure) {
      setError(failure);
    } finally {
      setStarting(false);
    }
  };

  const toggle = (s: TaskStatus) => setStatuses((now) => (now.includes(s) ? now.filter((x) => x !== s) : [...now, s]));
  return (
    <section data-testid="export-page">
      <h1>{t("exports.title")}</h1>
      <form className="form" onSubmit={(e) => void start(e)} noValidate>
        <label>
          {t("exports.format")}
          <select data-testid="export-format" value={format} onChange={(e) => setFormat(e.target.value as Schemas["ExportFormat"])}>
            {FORMATS.map((f) => (
              <option key={f} value={f}>
                {t(`exports.formats.${f}`)}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          <input type="checkbox" data-testid="export-approved" checked={approvedOnly} onChange={(e) => setApprovedOnly(e.target.checked)} />
          {t("exports.approvedOnly")}
        </label>
        <fieldset>
          <legend>{t("exports.statuses")}</legend>
          <div className="checks">
            {STATUSES.map((s) => (
              <label key={s} className="inline">
                <input type="checkbox" data-testid={`export-status-${s}`} checked={statuses.includes(s)} onChange={() => toggle(s)} />
                {t(`taskStatus.${s}`)}
              </label>
            ))}
          </div>
        </fieldset>
        <label>
          {t("exports.tags")}
          <input data-testid="export-tags" value={tags} placeholder={t("bulk.tagsHint")} onChange={(e) => setTags(e.target.value)} />
        </label>
        <div className="checks">
          <label>
            {t("exports.createdFrom")}
            <input type="date" data-testid="export-from" value={from} onChange={(e) => setFrom(e.target.value)} />
          </label>
          <label>
            {t("exports.createdTo")}
            <input type="date" data-testid="export-to" value={to} onChange={(e) => setTo(e.target.value)} />
          </label>
        </div>
        <div>
          <button type="submit" className="primary" data-testid="export-start" disabled={starting}>
            {t("exports.start")}
          </button>
        </div>
      </form>
      <ErrorMessage error={error} />
      <h2>{t("exports.jobs")}</h2>
      {jobs.length === 0 ? <p className="muted">{t("exports.none")}</p> : null}
      <table className="table">
        <tbody>
          {jobs.map((j) => (
            <tr key={j.job_id} data-testid="export-status" data-status={j.status} data-job-id={j.job_id}>
              <td>{t(`exports.formats.${String((j.params as { format?: string }).format ?? "json")}`)}</td>
              <td><When iso={j.created_at} /></td>
              <td>{t(`bulk.status.${j.status}`)}</td>
              <td className="num">{t("exports.tasks", { n: formatNumber(i18n.language, j.counts?.done ?? 0) })}</td>
              <td>
                {j.status === "succeeded" && j.download_url ? (
                  <a href={j.download_url} data-testid="export-download" className="button" download>
                    {t("exports.download")}
                  </a>
                ) : null}
                {j.error ? <span className="field-error">{j.error}</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
