// Upload media files, folders or manifests: dropped or chosen, sent to S3 through presigned URLs a
// few at a time, with the progress of the whole batch (files, bytes, rate, time left). A file that
// fails is marked with its reason and can be retried; the others go on. Below, the project's
// imports (what ingest made of the uploads) with their progress and error reports.
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { When } from "@/components/When";
import { ProgressBar } from "@/components/ProgressBar";
import { ApiError, unwrap } from "@/lib/api";
import { formatBytes, formatDuration, formatNumber } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useAsync, useInterval } from "@/lib/useAsync";
import { droppedFiles, TransferError, transfer } from "./transfer";

const PARALLEL = 4;

type Status = "waiting" | "uploading" | "done" | "failed";

interface Item {
  id: number;
  file: File;
  name: string; // the object name: the file's path in a dropped or chosen folder
  status: Status;
  sent: number;
  error?: string;
  kind?: string;
}

function reasonOf(error: unknown): string {
  if (error instanceof ApiError) return [error.message, ...error.details.map((d) => d.message ?? "")].filter(Boolean).join(" — ");
  if (error instanceof TransferError) return error.status ? `HTTP ${error.status}: ${error.message}` : error.message;
  return String(error);
}

function Imports({ projectId, refresh }: { projectId: string; refresh: number }) {
  const { t, i18n } = useTranslation();
  const { api } = useSession();
  const path = { project_id: projectId };
  const imports = useAsync(() => unwrap(api.GET("/projects/{project_id}/imports", { params: { path, query: { limit: 20 } } })), [projectId, refresh]);
  const running = (imports.data?.items ?? []).some((i) => i.status === "running");
  // poll while an import runs, and for a minute after an upload lands (ingest opens its import)
  const [recent, setRecent] = useState(false);
  useEffect(() => {
    if (refresh === 0) return;
    setRecent(true);
    const id = window.setTimeout(() => setRecent(false), 60_000);
    return () => window.clearTimeout(id);
  }, [refresh]);
  useInterval(imports.reload, 2000, running || recent);
  const [reports, setReports] = useState<Record<string, string>>({});
  const n = (v: number) => formatNumber(i18n.language, v);
  const openReport = async (importId: string) => {
    const detail = await unwrap(api.GET("/projects/{project_id}/imports/{import_id}", { params: { path: { ...path, import_id: importId } } }));
    if (detail.error_report_url) setReports((now) => ({ ...now, [importId]: detail.error_report_url ?? "" }));
  };
  return (
    <>
      <h2>{t("uploads.imports")}</h2>
      <ErrorMessage error={imports.error} />
      {imports.data && imports.data.items.length === 0 ? <p className="muted">{t("uploads.noImports")}</p> : null}
      <table className="table" data-testid="imports">
        <thead>
          <tr>
            <th>{t("uploads.col.file")}</th>
            <th>{t("uploads.col.status")}</th>
            <th className="num">{t("uploads.col.tasks")}</th>
            <th className="num">{t("uploads.col.duplicates")}</th>
            <th className="num">{t("uploads.col.errors")}</th>
            <th>{t("uploads.col.started")}</th>
          </tr>
        </thead>
        <tbody>
          {(imports.data?.items ?? []).map((i) => (
            <tr key={i.import_id} data-testid="import-row" data-status={i.status} data-key={i.key ?? ""} data-errors={i.errors ?? 0} data-tasks={i.tasks_created ?? 0}>
              <td translate="no">{(i.key ?? i.import_id).split("/").slice(2).join("/") || i.import_id}</td>
              <td>
                {t(`uploads.importStatus.${i.status}`)}
                {i.status === "running" && (i.ranges_total ?? 0) > 0 ? <ProgressBar value={i.ranges_done ?? 0} max={i.ranges_total ?? 1} label={t("uploads.importProgress")} /> : null}
              </td>
              <td className="num">{n(i.tasks_created ?? 0)}</td>
              <td className="num">{n(i.duplicates ?? 0)}</td>
              <td className="num">
                {n(i.errors ?? 0)}
                {(i.errors ?? 0) > 0 && i.error_report_key ? (
                  reports[i.import_id] ? (
                    <a href={reports[i.import_id]} data-testid="import-errors" download>
                      {t("uploads.errorReport")}
                    </a>
                  ) : (
                    <button type="button" className="link" data-testid="import-errors-open" onClick={() => void openReport(i.import_id)}>
                      {t("uploads.errorReport")}
                    </button>
                  )
                ) : null}
              </td>
              <td><When iso={i.created_at} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

export default function UploadPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  const { api } = useSession();
  const [items, setItems] = useState<Item[]>([]);
  const [started, setStarted] = useState<number>();
  const [finished, setFinished] = useState(0);
  const [over, setOver] = useState(false);
  const nextId = useRef(1);
  const active = useRef(new Map<number, AbortController>());
  const latest = useRef(items);
  latest.current = items;

  const update = (id: number, patch: Partial<Item>) => setItems((now) => now.map((i) => (i.id === id ? { ...i, ...patch } : i)));

  const send = (item: Item) => {
    const controller = new AbortController();
    active.current.set(item.id, controller);
    update(item.id, { status: "uploading", sent: 0, error: undefined });
    transfer({ api, projectId, file: item.file, filename: item.name, signal: controller.signal, onProgress: (sent) => update(item.id, { sent }) }).then(
      ({ kind }) => {
        update(item.id, { status: "done", sent: item.file.size, kind });
        setFinished((f) => f + 1);
      },
      (error: unknown) => update(item.id, { status: "failed", error: reasonOf(error) }),
    ).finally(() => active.current.delete(item.id));
  };

  // The pool: whenever fewer than PARALLEL files are in flight, start the next waiting one.
  useEffect(() => {
    const inFlight = items.filter((i) => i.status === "uploading").length;
    const waiting = items.filter((i) => i.status === "waiting").slice(0, Math.max(0, PARALLEL - inFlight));
    for (const item of waiting) send(item);
  });

  useEffect(() => () => active.current.forEach((c) => c.abort()), []);

  const add = (files: { file: File; path: string }[]) => {
    if (files.length === 0) return;
    setStarted((s) => (s !== undefined && latest.current.some((i) => i.status === "uploading" || i.status === "waiting") ? s : Date.now()));
    setItems((now) => [...now, ...files.map(({ file, path }) => ({ id: nextId.current++, file, name: path.replace(/^\/+/, ""), status: "waiting" as Status, sent: 0 }))]);
  };
  const retry = (id: number) => {
    setStarted((s) => s ?? Date.now());
    update(id, { status: "waiting", sent: 0, error: undefined });
  };

  const totalBytes = items.reduce((a, i) => a + i.file.size, 0);
  const sentBytes = items.reduce((a, i) => a + (i.status === "failed" ? 0 : i.sent), 0);
  const done = items.filter((i) => i.status === "done").length;
  const failed = items.filter((i) => i.status === "failed");
  const busy = items.some((i) => i.status === "uploading" || i.status === "waiting");
  const [now, setNow] = useState(Date.now());
  useInterval(() => setNow(Date.now()), 500, busy);
  const elapsed = started ? Math.max(0.001, (now - started) / 1000) : 0;
  const rate = elapsed > 0 ? sentBytes / elapsed : 0;
  const left = rate > 0 ? (totalBytes - sentBytes) / rate : undefined;
  const locale = i18n.language;
  const n = (v: number) => formatNumber(locale, v);

  return (
    <section data-testid="upload-page">
      <h1>{t("uploads.title")}</h1>
      <p className="muted">{t("uploads.help")}</p>
      <div
        className={`dropzone${over ? " dropzone-over" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          void droppedFiles(e.dataTransfer.items).then(add);
        }}
      >
        <p>{t("uploads.drop")}</p>
        <div className="actions">
          <label className="button">
            {t("uploads.chooseFiles")}
            <input type="file" multiple className="visually-hidden" data-testid="upload-input" onChange={(e) => {
              add([...(e.target.files ?? [])].map((file) => ({ file, path: file.name })));
              e.target.value = "";
            }} />
          </label>
          <label className="button">
            {t("uploads.chooseFolder")}
            <input type="file" multiple className="visually-hidden" data-testid="upload-folder" {...{ webkitdirectory: "" }} onChange={(e) => {
              add([...(e.target.files ?? [])].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
              e.target.value = "";
            }} />
          </label>
        </div>
      </div>
      {items.length > 0 ? (
        <div className="upload-summary" data-testid="upload-summary" data-done={done} data-failed={failed.length} data-busy={busy}>
          <ProgressBar value={sentBytes} max={totalBytes} label={t("uploads.progress")} />
          <p>
            {t("uploads.files", { done: n(done), total: n(items.length) })} · {t("uploads.bytes", { sent: formatBytes(locale, sentBytes), total: formatBytes(locale, totalBytes) })}
            {busy && rate > 0 ? ` · ${t("uploads.rate", { rate: formatBytes(locale, rate) })}` : ""}
            {busy && left !== undefined ? ` · ${t("uploads.left", { left: formatDuration(locale, left) })}` : ""}
            {failed.length > 0 ? ` · ${t("uploads.failedCount", { n: n(failed.length) })}` : ""}
          </p>
          {failed.length > 1 ? (
            <button type="button" data-testid="upload-retry-all" onClick={() => failed.forEach((f) => retry(f.id))}>
              {t("uploads.retryAll")}
            </button>
          ) : null}
        </div>
      ) : null}
      <ul className="upload-list">
        {items.map((i) => (
          <li key={i.id} data-testid="upload-file" data-name={i.name} data-status={i.status} className={`upload-item upload-${i.status}`}>
            <span className="upload-name" translate="no">{i.name}</span>
            <data className="muted" value={i.file.size}>{formatBytes(locale, i.file.size)}</data>
            <span>{t(`uploads.status.${i.status}`)}{i.kind === "manifest" ? ` · ${t("uploads.manifest")}` : ""}</span>
            {i.status === "uploading" ? <ProgressBar value={i.sent} max={i.file.size} label={i.name} /> : null}
            {i.error ? (
              <span className="field-error" data-testid="upload-error">
                {i.error}
              </span>
            ) : null}
            {i.status === "failed" ? (
              <button type="button" data-testid="upload-retry" onClick={() => retry(i.id)}>
                {t("common.retry")}
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      <Imports projectId={projectId} refresh={finished} />
    </section>
  );
}
