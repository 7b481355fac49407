// The project's workflow settings (ProjectSettings), each with its default shown.
import { useTranslation } from "react-i18next";
import { formatNumber } from "@/lib/format";
import { type Draft, SETTINGS } from "./draft";
import type { Problems } from "./errors";
import { CheckField, Field } from "./fields";

/** Sentences of a hint, each its own catalogue string (never glued into one). */
function Hint({ parts }: { parts: string[] }) {
  return (
    <>
      {parts.map((p, i) => (
        <span key={i}>{i > 0 ? " " : ""}{p}</span>
      ))}
    </>
  );
}

export function SettingsFields({
  settings,
  problems,
  onChange,
}: {
  settings: Draft["settings"];
  problems: Problems;
  onChange: (settings: Draft["settings"]) => void;
}) {
  const { t, i18n } = useTranslation();
  const set = (key: string, value: string | boolean) => onChange({ ...settings, [key]: value });
  return (
    <div className="pf-settings">
      {SETTINGS.map((spec) => {
        const label = t(`projectForm.settings.${spec.key}.label`);
        const help = t(`projectForm.settings.${spec.key}.help`);
        const testId = `pf-setting-${spec.key}`;
        if (spec.kind === "boolean") {
          const shown = t(spec.default ? "projectForm.settings.on" : "projectForm.settings.off");
          return (
            <CheckField
              key={spec.key}
              label={label}
              hint={<Hint parts={[help, t("projectForm.settings.default", { value: shown })]} />}
              checked={settings[spec.key] === true}
              onChange={(checked) => set(spec.key, checked)}
              testId={testId}
            />
          );
        }
        if (spec.kind === "enum") {
          const name = (value: string) => t(`projectForm.priorityModes.${value}`);
          return (
            <Field key={spec.key} label={label} hint={<Hint parts={[help, t("projectForm.settings.default", { value: name(spec.default) })]} />} problems={problems[`settings.${spec.key}`]}>
              {(a11y) => (
                <select {...a11y} value={String(settings[spec.key])} onChange={(e) => set(spec.key, e.target.value)} data-testid={testId} data-default={spec.default}>
                  {spec.options.map((option) => (
                    <option key={option} value={option}>
                      {name(option)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          );
        }
        const shown = formatNumber(i18n.language, spec.default, spec.integer ? 0 : 2);
        return (
          <Field
            key={spec.key}
            label={label}
            hint={<Hint parts={[help, t("projectForm.settings.range", { min: formatNumber(i18n.language, spec.min, 2), max: formatNumber(i18n.language, spec.max, 2) }), t("projectForm.settings.default", { value: shown })]} />}
            problems={problems[`settings.${spec.key}`]}
          >
            {(a11y) => (
              <input
                {...a11y}
                type="number"
                inputMode={spec.integer ? "numeric" : "decimal"}
                min={spec.min}
                max={spec.max}
                step={spec.step}
                value={String(settings[spec.key])}
                onChange={(e) => set(spec.key, e.target.value)}
                data-testid={testId}
                data-default={spec.default}
              />
            )}
          </Field>
        );
      })}
    </div>
  );
}
