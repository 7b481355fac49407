// Create a project (/projects/new) or change one (/projects/:projectId/settings): its name,
// media types, workflow settings and label configuration. The form checks what it can before
// sending; the API's 422 details are shown at the fields they concern.
import { type FormEvent, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router";
import { ErrorMessage } from "@/components/ErrorMessage";
import { Spinner } from "@/components/Spinner";
import { ApiError, type Project, unwrap } from "@/lib/api";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import { ControlsEditor } from "./form/ControlsEditor";
import {
  DESCRIPTION_MAX,
  type Draft,
  INSTRUCTIONS_MAX,
  MEDIA_TYPES,
  PROJECT_NAME_MAX,
  createOf,
  draftOf,
  emptyDraft,
  updateOf,
} from "./form/draft";
import { type Problems, fieldPaths, merge, routeDetails, validate } from "./form/errors";
import { Field, FieldErrors } from "./form/fields";
import { SettingsFields } from "./form/SettingsFields";

export default function ProjectFormPage() {
  const { projectId } = useParams();
  return projectId ? <EditProject projectId={projectId} /> : <ProjectForm />;
}

function EditProject({ projectId }: { projectId: string }) {
  const { t } = useTranslation();
  const { api } = useSession();
  const project = useAsync(() => unwrap(api.GET("/projects/{project_id}", { params: { path: { project_id: projectId } } })), [projectId]);
  if (project.error) return <ErrorMessage error={project.error} />;
  // the form starts from the project it was opened with; another project starts another form
  if (project.data?.project_id !== projectId) return <Spinner label={t("projectForm.loading")} />;
  return <ProjectForm key={projectId} project={project.data} />;
}

type Notice = "saved" | "unchanged";

function ProjectForm({ project }: { project?: Project }) {
  const { t } = useTranslation();
  const { api, refreshMemberships } = useSession();
  const navigate = useNavigate();
  const [baseline, setBaseline] = useState(project);
  const [draft, setDraft] = useState<Draft>(() => (project ? draftOf(project) : emptyDraft()));
  const [checked, setChecked] = useState(false);
  const [apiProblems, setApiProblems] = useState<Problems>({});
  const [error, setError] = useState<unknown>();
  const [saving, setSaving] = useState(false);
  const [notice, setNotice] = useState<Notice>();
  const [focusTick, setFocusTick] = useState(0);
  const form = useRef<HTMLFormElement>(null);

  // once the user has tried to save, the form's own checks follow every edit
  const problems = merge(checked ? validate(draft) : {}, apiProblems);

  useEffect(() => {
    if (focusTick === 0) return;
    form.current?.querySelector<HTMLElement>('[aria-invalid="true"], [role="alert"]')?.scrollIntoView({ block: "center" });
    form.current?.querySelector<HTMLElement>(':is(input, select, textarea)[aria-invalid="true"]')?.focus();
  }, [focusTick]);

  const edit = (patch: Partial<Draft>, reshaped = false) => {
    setDraft((d) => ({ ...d, ...patch }));
    setNotice(undefined);
    if (reshaped) setApiProblems({});
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    setChecked(true);
    setNotice(undefined);
    setApiProblems({});
    setError(undefined);
    if (Object.keys(validate(draft)).length > 0) {
      setFocusTick((n) => n + 1);
      return;
    }
    setSaving(true);
    try {
      if (!baseline) {
        const created = await unwrap(api.POST("/projects", { body: createOf(draft) }));
        // the session reads the new membership that opens the dashboard, then goes there
        await refreshMemberships();
        navigate(`/projects/${encodeURIComponent(created.project_id)}`);
        return;
      }
      const change = updateOf(baseline, draft);
      if (Object.keys(change).length === 0) {
        setNotice("unchanged");
        return;
      }
      const updated = await unwrap(
        api.PATCH("/projects/{project_id}", { params: { path: { project_id: baseline.project_id } }, body: change }),
      );
      setBaseline(updated);
      setNotice("saved");
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 422) {
        const routed = routeDetails(failure.details, fieldPaths(draft));
        setApiProblems(routed.problems);
        setError(new ApiError(failure.status, failure.code, failure.message, routed.rest));
        setFocusTick((n) => n + 1);
      } else {
        setError(failure);
      }
    } finally {
      setSaving(false);
    }
  }

  const cancelTo = baseline ? `/projects/${encodeURIComponent(baseline.project_id)}` : "/";
  return (
    <section className="pf-page">
      <h1>{baseline ? t("projectForm.editTitle", { name: baseline.name }) : t("projectForm.createTitle")}</h1>
      <form ref={form} className="form pf-form" noValidate onSubmit={(e) => void submit(e)} data-testid="project-form" aria-busy={saving}>
        <fieldset className="pf-section">
          <legend>{t("projectForm.sections.project")}</legend>
          <Field label={t("projectForm.name")} hint={t("projectForm.nameHint")} problems={problems.name}>
            {(a11y) => (
              <input {...a11y} value={draft.name} maxLength={PROJECT_NAME_MAX} required onChange={(e) => edit({ name: e.target.value })} data-testid="pf-name" />
            )}
          </Field>
          <Field label={t("projectForm.description")} problems={problems.description}>
            {(a11y) => (
              <textarea
                {...a11y}
                rows={3}
                value={draft.description}
                maxLength={DESCRIPTION_MAX}
                onChange={(e) => edit({ description: e.target.value })}
                data-testid="pf-description"
              />
            )}
          </Field>
          <fieldset className="pf-media" aria-invalid={problems.media_types ? true : undefined}>
            <legend>{t("projectForm.mediaTypes")}</legend>
            <div className="pf-row">
              {MEDIA_TYPES.map((m) => (
                <label key={m} className="pf-check">
                  <input
                    type="checkbox"
                    checked={draft.mediaTypes.includes(m)}
                    onChange={(e) =>
                      edit({ mediaTypes: MEDIA_TYPES.filter((x) => (x === m ? e.target.checked : draft.mediaTypes.includes(x))) })
                    }
                    data-testid={`pf-media-${m}`}
                  />{" "}
                  {t(`mediaTypes.${m}`)}
                </label>
              ))}
            </div>
            <FieldErrors problems={problems.media_types} />
          </fieldset>
        </fieldset>

        <fieldset className="pf-section">
          <legend>{t("projectForm.sections.labelConfig")}</legend>
          {baseline ? <p className="muted">{t("projectForm.configVersion", { version: baseline.label_config.version })}</p> : null}
          <ControlsEditor controls={draft.controls} problems={problems} onChange={(controls, reshaped) => edit({ controls }, reshaped)} />
          <Field label={t("projectForm.instructions")} hint={t("projectForm.instructionsHint")} problems={problems["label_config.instructions"]}>
            {(a11y) => (
              <textarea
                {...a11y}
                rows={5}
                value={draft.instructions}
                maxLength={INSTRUCTIONS_MAX}
                onChange={(e) => edit({ instructions: e.target.value })}
                data-testid="pf-instructions"
              />
            )}
          </Field>
        </fieldset>

        <fieldset className="pf-section">
          <legend>{t("projectForm.sections.settings")}</legend>
          <SettingsFields settings={draft.settings} problems={problems} onChange={(settings) => edit({ settings })} />
        </fieldset>

        <ErrorMessage error={error} />
        {notice ? (
          <p className="notice" role="status" data-testid="pf-notice" data-notice={notice}>
            {t(`projectForm.notice.${notice}`)}
          </p>
        ) : null}
        <div className="actions">
          <button type="submit" className="primary" disabled={saving} data-testid="pf-save">
            {saving ? t("projectForm.saving") : baseline ? t("projectForm.save") : t("projectForm.create")}
          </button>
          <Link className="button" to={cancelTo}>
            {t("projectForm.cancel")}
          </Link>
        </div>
      </form>
    </section>
  );
}
