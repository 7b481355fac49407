import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { ProgressBar } from "@/components/ProgressBar";
import { Spinner } from "@/components/Spinner";
import { type Project, unwrap } from "@/lib/api";
import { formatNumber } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import { progressOf } from "./progress";

function ProjectRow({ project }: { project: Project }) {
  const { t, i18n } = useTranslation();
  const { api, can } = useSession();
  const id = project.project_id;
  const stats = useAsync(() => unwrap(api.GET("/projects/{project_id}/stats", { params: { path: { project_id: id } } })), [id]);
  const progress = stats.data ? progressOf(stats.data) : undefined;
  const n = (v: number) => formatNumber(i18n.language, v);
  return (
    <li className="card project-card" data-testid="project-card" data-project-id={id}>
      <div className="card-head">
        <Link to={`/projects/${encodeURIComponent(id)}`} className="card-title" translate="no">
          {project.name}
        </Link>
        <span className={`badge badge-${project.status ?? "active"}`}>{t(`projectStatus.${project.status ?? "active"}`)}</span>
      </div>
      {project.description ? <p className="muted" translate="no">{project.description}</p> : null}
      <p className="muted">{project.media_types.map((m) => t(`mediaTypes.${m}`)).join(" · ")}</p>
      {progress ? (
        <>
          <ProgressBar value={progress.done} max={progress.tasks} label={t("projects.progress")} />
          <p className="muted">{t("projects.progressLine", { done: n(progress.done), labelled: n(progress.labelled), tasks: n(progress.tasks) })}</p>
        </>
      ) : null}
      <div className="actions">
        {can(id, "task:lease") ? <Link className="button primary" to={`/projects/${encodeURIComponent(id)}/label`}>{t("projects.startLabeling")}</Link> : null}
        {can(id, "review:lease") ? <Link className="button" to={`/projects/${encodeURIComponent(id)}/review`}>{t("projects.startReview")}</Link> : null}
      </div>
    </li>
  );
}

export function ProjectsPage() {
  const { t } = useTranslation();
  const { api, canGlobally } = useSession();
  const projects = useAsync(() => unwrap(api.GET("/projects", { params: { query: { limit: 100 } } })), []);
  return (
    <section data-testid="projects-page">
      <div className="page-head">
        <h1>{t("projects.title")}</h1>
        {canGlobally("project:create") ? <Link className="button primary" to="/projects/new">{t("projects.create")}</Link> : null}
      </div>
      <ErrorMessage error={projects.error} />
      {projects.loading && !projects.data ? <Spinner label={t("common.loading")} /> : null}
      {projects.data && projects.data.items.length === 0 ? <p>{t("projects.none")}</p> : null}
      <ul className="cards">
        {projects.data?.items.map((p) => <ProjectRow key={p.project_id} project={p} />)}
      </ul>
    </section>
  );
}
