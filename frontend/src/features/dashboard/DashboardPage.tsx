// The project dashboard. It renders from counters only (/stats and /annotators read
// aggregates, never the tasks), so it loads as fast at 1M tasks as at 1k.
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { BarChart } from "@/components/BarChart";
import { ErrorMessage } from "@/components/ErrorMessage";
import { Spinner } from "@/components/Spinner";
import { unwrap } from "@/lib/api";
import { formatDay, formatDuration, formatNumber, formatPercent } from "@/lib/format";
import { useSession } from "@/lib/session";
import { TASK_STATUSES as STATUSES } from "@/lib/enums";
import { useAsync } from "@/lib/useAsync";


export default function DashboardPage() {
  const { t, i18n } = useTranslation();
  const { projectId = "" } = useParams();
  const { api, can } = useSession();
  const path = { project_id: projectId };
  const project = useAsync(() => unwrap(api.GET("/projects/{project_id}", { params: { path } })), [projectId]);
  const stats = useAsync(() => unwrap(api.GET("/projects/{project_id}/stats", { params: { path } })), [projectId]);
  const annotators = useAsync(
    () => (can(projectId, "activity:read") ? unwrap(api.GET("/projects/{project_id}/annotators", { params: { path } })) : Promise.resolve(undefined)),
    [projectId],
  );
  const locale = i18n.language;
  const n = (v: number) => formatNumber(locale, v);
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? "—" : formatPercent(locale, v));
  const s = stats.data;
  const by = (s?.by_status ?? {}) as Record<string, number>;
  const agreement = s?.agreement as { mean?: number | null; rounds?: number } | undefined;
  const review = s?.review as { decided?: number; rejected?: number; rejection_rate?: number | null } | undefined;
  return (
    <section data-testid="dashboard">
      <h1 translate={project.data ? "no" : undefined}>{project.data?.name ?? t("dashboard.title")}</h1>
      <ErrorMessage error={project.error ?? stats.error} />
      {!s ? <Spinner label={t("common.loading")} /> : null}
      {s ? (
        <>
          <div className="tiles">
            <div className="tile"><span className="tile-value" data-testid="stat-tasks">{n(s.tasks)}</span><span>{t("dashboard.tasks")}</span></div>
            <div className="tile"><span className="tile-value">{n(s.annotations)}</span><span>{t("dashboard.annotations")}</span></div>
            <div className="tile"><span className="tile-value">{s.lead_time_s_median === null ? "—" : formatDuration(locale, s.lead_time_s_median)}</span><span>{t("dashboard.leadTime")}</span></div>
            <div className="tile"><span className="tile-value">{pct(agreement?.mean)}</span><span>{t("dashboard.agreement")}</span></div>
            <div className="tile"><span className="tile-value">{pct(review?.rejection_rate)}</span><span>{t("dashboard.rejectionRate")}</span></div>
            <div className="tile"><span className="tile-value">{n(s.active_users)}</span><span>{t("dashboard.activeUsers")}</span></div>
          </div>
          <h2>{t("dashboard.byStatus")}</h2>
          <table className="table compact">
            <tbody>
              {STATUSES.map((status) => (
                <tr key={status} data-status={status}>
                  <th scope="row">{t(`taskStatus.${status}`)}</th>
                  <td className="num">{n(by[status] ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>{t("dashboard.throughput")}</h2>
          <BarChart
            title={t("dashboard.throughput")}
            bars={s.throughput.map((d) => ({ label: formatDay(locale, d.day), value: d.annotations }))}
            format={n}
          />
        </>
      ) : null}
      {annotators.data ? (
        <>
          <h2>{t("dashboard.annotators")}</h2>
          <table className="table" data-testid="annotators">
            <thead>
              <tr>
                <th>{t("dashboard.user")}</th>
                <th className="num">{t("dashboard.annotations")}</th>
                <th className="num">{t("dashboard.perDay")}</th>
                <th className="num">{t("dashboard.goldAccuracy")}</th>
                <th className="num">{t("dashboard.agreement")}</th>
                <th className="num">{t("dashboard.rejections")}</th>
              </tr>
            </thead>
            <tbody>
              {annotators.data.annotators.map((a) => (
                <tr key={a.user_id}>
                  <td translate="no">{a.user_id}</td>
                  <td className="num">{n(a.annotations)}</td>
                  <td className="num">{formatNumber(locale, a.throughput_per_day, 1)}</td>
                  <td className="num">{pct(a.gold_accuracy)}</td>
                  <td className="num">{pct(a.mean_agreement)}</td>
                  <td className="num">{n(a.review_rejections)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}
