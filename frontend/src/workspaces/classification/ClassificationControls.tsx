// Classification controls, shared by every workspace: one choice (or several) per control.
import { useTranslation } from "react-i18next";
import { replaceResult } from "../results";
import type { ControlSpec, FieldError, Result } from "../types";

export function ClassificationControls({
  controls,
  results,
  onChange,
  errors,
}: {
  controls: ControlSpec[];
  results: Result[];
  onChange?: (results: Result[]) => void;
  errors?: FieldError[];
}) {
  const { t } = useTranslation();
  return (
    <>
      {controls.map((control) => {
        const current = results.find((r) => r.control === control.name);
        const labels = current && "labels" in current ? current.labels : [];
        const toggle = (name: string) => {
          if (!onChange) return;
          const on = labels.includes(name);
          const next = control.multiple ? (on ? labels.filter((l) => l !== name) : [...labels, name]) : on ? [] : [name];
          onChange(replaceResult(results, { control: control.name, type: "classification", labels: next }));
        };
        const error = errors?.find((e) => e.path[0] === control.name);
        return (
          <fieldset key={control.name} className="classification" data-testid={`classification-${control.name}`}>
            <legend>
              <span translate="no">{control.name}</span>
              {control.required ? <span className="muted"> · {t("workspace.required")}</span> : null}
            </legend>
            <div className="chips">
              {(control.classes ?? []).map((c) => (
                <button
                  key={c.name}
                  type="button"
                  className={labels.includes(c.name) ? "chip chip-on" : "chip"}
                  aria-pressed={labels.includes(c.name)}
                  disabled={!onChange}
                  onClick={() => toggle(c.name)}
                  data-testid={`choice-${control.name}-${c.name}`}
                >
                  <span translate="no">{c.name}</span>
                </button>
              ))}
            </div>
            {error ? (
              <p className="field-error" data-testid="region-error">
                {error.message}
              </p>
            ) : null}
          </fieldset>
        );
      })}
    </>
  );
}
