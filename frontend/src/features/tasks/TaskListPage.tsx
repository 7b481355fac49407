// The task list: virtualized rows, server-side filters kept in the URL, cursor pages loaded as
// the user scrolls (one page of 200 at a time, never the whole project), selection of rows or of
// everything matching the filter, and bulk jobs with their progress.
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams, useSearchParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { When } from "@/components/When";
import { Spinner } from "@/components/Spinner";
import { type MediaType, type Task, type TaskStatus, unwrap } from "@/lib/api";
import { formatNumber } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import { BulkPanel, type Selection } from "./BulkPanel";
import { MEDIA_TYPES, TASK_STATUSES as STATUSES } from "@/lib/enums";
import { FILTER_KEYS, type Filters, bulkFilterOf, filtersOf, knownTotal } from "./filters";

const FIRST_PAGE = 50; // small, so the first rows show soon
const PAGE_SIZE = 200;
const ROW_HEIGHT = 38;

interface Listing {
  rows: Task[];
  cursor: string | null | undefined; // undefined: the first page is not loaded yet
  loading: boolean;
  error: unknown;
  pagesRequested: number;
}

const EMPTY: Listing = { rows: [], cursor: undefined, loading: false, error: undefined, pagesRequested: 0 };

/** The filtered listing, a page at a time; a stale page (of an older filter) is dropped. */
function useListing(projectId: string, filters: Filters) {
  const { api } = useSession();
  const [listing, setListing] = useState<Listing>(EMPTY);
  const generation = useRef(0);
  const key = JSON.stringify(filters);

  const loadMore = useCallback(
    (from: Listing) => {
      if (from.loading || from.cursor === null) return;
      const mine = generation.current;
      setListing({ ...from, loading: true, pagesRequested: from.pagesRequested + 1 });
      const query = { ...filters, limit: from.cursor ? PAGE_SIZE : FIRST_PAGE, cursor: from.cursor ?? undefined };
      unwrap(api.GET("/projects/{project_id}/tasks", { params: { path: { project_id: projectId }, query } })).then(
        (page) => {
          if (mine !== generation.current) return;
          setListing((now) => ({ ...now, rows: [...now.rows, ...page.items], cursor: page.next_cursor ?? null, loading: false }));
        },
        (error: unknown) => {
          if (mine !== generation.current) return;
          setListing((now) => ({ ...now, loading: false, error }));
        },
      );
    },
    [api, projectId, key],
  );

  const reset = useCallback(() => {
    generation.current++;
    loadMore(EMPTY);
  }, [loadMore]);

  useEffect(reset, [reset]);
  return { listing, loadMore: () => loadMore(listing), reset };
}

function FilterBar({ filters, onChange }: { filters: Filters; onChange: (next: Filters) => void }) {
  const { t } = useTranslation();
  const [tag, setTag] = useState(filters.tag ?? "");
  const [assignee, setAssignee] = useState(filters.assignee ?? "");
  useEffect(() => setTag(filters.tag ?? ""), [filters.tag]);
  useEffect(() => setAssignee(filters.assignee ?? ""), [filters.assignee]);
  const set = (patch: Partial<Filters>) => onChange({ ...filters, ...patch });
  return (
    <form
      className="filters"
      data-testid="task-filters"
      onSubmit={(e) => {
        e.preventDefault();
        set({ tag: tag.trim() || undefined, assignee: assignee.trim() || undefined });
      }}
    >
      <label>
        {t("tasks.filter.status")}
        <select data-testid="filter-status" value={filters.status ?? ""} onChange={(e) => set({ status: (e.target.value || undefined) as TaskStatus | undefined })}>
          <option value="">{t("common.any")}</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {t(`taskStatus.${s}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t("tasks.filter.mediaType")}
        <select data-testid="filter-media" value={filters.media_type ?? ""} onChange={(e) => set({ media_type: (e.target.value || undefined) as MediaType | undefined })}>
          <option value="">{t("common.any")}</option>
          {MEDIA_TYPES.map((m) => (
            <option key={m} value={m}>
              {t(`mediaTypes.${m}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t("tasks.filter.prediction")}
        <select
          data-testid="filter-prediction"
          value={filters.has_prediction === undefined ? "" : String(filters.has_prediction)}
          onChange={(e) => set({ has_prediction: e.target.value === "" ? undefined : e.target.value === "true" })}
        >
          <option value="">{t("common.any")}</option>
          <option value="true">{t("common.yes")}</option>
          <option value="false">{t("common.no")}</option>
        </select>
      </label>
      <label>
        {t("tasks.filter.tag")}
        <input data-testid="filter-tag" value={tag} maxLength={64} onChange={(e) => setTag(e.target.value)} onBlur={() => set({ tag: tag.trim() || undefined })} />
      </label>
      <label>
        {t("tasks.filter.assignee")}
        <input data-testid="filter-assignee" value={assignee} maxLength={128} placeholder={t("tasks.filter.assigneeHint")} onChange={(e) => setAssignee(e.target.value)} onBlur={() => set({ assignee: assignee.trim() || undefined })} />
      </label>
      <label>
        {t("tasks.filter.order")}
        <select data-testid="filter-order" value={filters.order ?? "asc"} onChange={(e) => set({ order: e.target.value === "desc" ? "desc" : undefined })}>
          <option value="asc">{t("tasks.filter.oldest")}</option>
          <option value="desc">{t("tasks.filter.newest")}</option>
        </select>
      </label>
      <button type="submit" className="visually-hidden">
        {t("tasks.filter.apply")}
      </button>
    </form>
  );
}

/** A row; memoized on its primitives, so scrolling re-renders only the rows that move in. */
const TaskRow = memo(function TaskRow({ task, selected, onToggle, start }: { task: Task; selected: boolean; onToggle: (id: string) => void; start: number }) {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  return (
    <div className="task-row" role="row" data-testid="task-row" data-task-id={task.task_id} style={{ position: "absolute", insetBlockStart: start, blockSize: ROW_HEIGHT, inlineSize: "100%" }}>
      <span role="gridcell">
        <input type="checkbox" checked={selected} onChange={() => onToggle(task.task_id)} aria-label={t("tasks.select", { id: task.task_id })} data-testid="task-select" />
      </span>
      <span role="gridcell" className="task-id" translate="no">
        <Link to={`/projects/${encodeURIComponent(projectId)}/tasks/${encodeURIComponent(task.task_id)}`}>{task.external_id ?? task.task_id}</Link>
      </span>
      <span role="gridcell">
        <span className={`badge badge-status-${task.status}`}>{t(`taskStatus.${task.status}`)}</span>
      </span>
      <span role="gridcell">{t(`mediaTypes.${task.media_type}`)}</span>
      <span role="gridcell" className="task-tags" translate="no">
        {(task.tags ?? []).join(", ")}
      </span>
      <span role="gridcell" className="num">
        {formatNumber(i18n.language, task.priority ?? 0)}
      </span>
      <span role="gridcell" className="num">
        {formatNumber(i18n.language, task.annotation_count ?? 0)}
      </span>
      <span role="gridcell">{(task.predictions ?? []).length > 0 ? <span className="badge badge-prediction">{t("tasks.predicted")}</span> : null}</span>
      <span role="gridcell" className="muted">
        <When iso={task.created_at} />
      </span>
    </div>
  );
});

export default function TaskListPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  const { api, can } = useSession();
  const [params, setParams] = useSearchParams();
  const filters = filtersOf(params);
  const { listing, loadMore, reset } = useListing(projectId, filters);
  const stats = useAsync(() => unwrap(api.GET("/projects/{project_id}/stats", { params: { path: { project_id: projectId } } })), [projectId]);
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [allMatching, setAllMatching] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const key = JSON.stringify(filters);
  useEffect(() => {
    setPicked(new Set());
    setAllMatching(false);
  }, [key]);

  const rows = listing.rows;
  const more = listing.cursor !== null;
  const virtualizer = useVirtualizer({
    count: rows.length + (more ? 1 : 0),
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const lastShown = items.length > 0 ? items[items.length - 1].index : -1;
  useEffect(() => {
    if (more && !listing.loading && listing.cursor !== undefined && lastShown >= rows.length - 1) loadMore();
  });

  const total = knownTotal(filters, stats.data);
  const n = (v: number) => formatNumber(i18n.language, v);
  const bulkFilter = bulkFilterOf(filters);
  const selection: Selection | undefined = allMatching ? { filter: bulkFilter ?? {} } : picked.size > 0 ? { task_ids: [...picked] } : undefined;
  const loadedAllPicked = rows.length > 0 && rows.every((r) => picked.has(r.task_id));
  const toggle = useCallback(
    (id: string) =>
      setPicked((now) => {
        const next = new Set(now);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      }),
    [],
  );

  return (
    <section data-testid="task-list" className="task-list-page">
      <div className="page-head">
        <h1>{t("tasks.title")}</h1>
        <p className="muted" data-testid="task-count">
          {total !== undefined ? t("tasks.count", { count: total, n: n(total) }) : t("tasks.loaded", { n: n(rows.length), more: more ? "+" : "" })}
        </p>
      </div>
      <FilterBar
        filters={filters}
        onChange={(next) => {
          const search = new URLSearchParams();
          for (const k of FILTER_KEYS) if (next[k] !== undefined) search.set(k, String(next[k]));
          setParams(search);
        }}
      />
      {can(projectId, "task:bulk") ? (
        <div className="selection-bar" data-testid="selection-bar">
          <label>
            <input
              type="checkbox"
              data-testid="select-loaded"
              checked={loadedAllPicked || allMatching}
              onChange={() => {
                setAllMatching(false);
                setPicked(loadedAllPicked ? new Set() : new Set(rows.map((r) => r.task_id)));
              }}
            />
            {t("tasks.selectLoaded", { n: n(rows.length) })}
          </label>
          <button type="button" data-testid="select-all-matching" disabled={bulkFilter === undefined} aria-pressed={allMatching} onClick={() => setAllMatching((v) => !v)}>
            {allMatching ? t("tasks.clearAllMatching") : total !== undefined ? t("tasks.selectAllMatchingCount", { n: n(total) }) : t("tasks.selectAllMatching")}
          </button>
          {bulkFilter === undefined ? <span className="muted">{t("tasks.noBulkFilter")}</span> : null}
          <span className="muted" data-testid="selected-count">
            {allMatching ? t("tasks.selectedAllMatching") : t("tasks.selected", { n: n(picked.size) })}
          </span>
        </div>
      ) : null}
      {selection ? <BulkPanel projectId={projectId} selection={selection} onDone={() => {
            reset();
            stats.reload();
          }} /> : null}
      <ErrorMessage error={listing.error} />
      <div className="task-grid" role="grid" aria-rowcount={total ?? -1} aria-label={t("tasks.title")}>
        <div className="task-row task-head" role="row">
          <span role="columnheader" />
          <span role="columnheader">{t("tasks.col.id")}</span>
          <span role="columnheader">{t("tasks.col.status")}</span>
          <span role="columnheader">{t("tasks.col.media")}</span>
          <span role="columnheader">{t("tasks.col.tags")}</span>
          <span role="columnheader" className="num">
            {t("tasks.col.priority")}
          </span>
          <span role="columnheader" className="num">
            {t("tasks.col.annotations")}
          </span>
          <span role="columnheader">{t("tasks.col.prediction")}</span>
          <span role="columnheader">{t("tasks.col.created")}</span>
        </div>
        <div ref={scroller} className="task-scroller" data-testid="task-scroller" data-pages={listing.pagesRequested}>
          <div style={{ blockSize: virtualizer.getTotalSize(), position: "relative" }}>
            {items.map((item) => {
              const style: React.CSSProperties = { position: "absolute", insetBlockStart: item.start, blockSize: ROW_HEIGHT, inlineSize: "100%" };
              const task = rows[item.index];
              if (!task)
                return (
                  <div key="loading" className="task-row" style={style}>
                    <Spinner label={t("common.loading")} />
                  </div>
                );
              return <TaskRow key={task.task_id} task={task} start={item.start} selected={allMatching || picked.has(task.task_id)} onToggle={toggle} />;
            })}
          </div>
          {!more && rows.length === 0 && !listing.loading ? (
            <p className="muted" data-testid="tasks-none">
              {t("tasks.none")}
            </p>
          ) : null}
        </div>
      </div>
    </section>
  );
}
