// Labelled inputs of the project form, each with its problems (role "alert" lists read by
// screen readers, tied to the input with aria-describedby).
import { type ReactNode, useId } from "react";
import { useTranslation } from "react-i18next";
import type { Problem } from "./errors";

export interface InputA11y {
  id: string;
  "aria-invalid": true | undefined;
  "aria-describedby": string | undefined;
}

export function useProblemText(): (problem: Problem) => string {
  const { t } = useTranslation();
  return (problem) => ("key" in problem ? t(problem.key, problem.params ?? {}) : problem.text);
}

export function FieldErrors({ problems, id }: { problems?: Problem[]; id?: string }) {
  const text = useProblemText();
  if (!problems || problems.length === 0) return null;
  return (
    <div id={id} role="alert">
      {problems.map((p, i) => (
        <p key={i} className="field-error" data-testid="field-error">
          {text(p)}
        </p>
      ))}
    </div>
  );
}

function describedBy(...ids: (string | false | undefined)[]): string | undefined {
  const present = ids.filter(Boolean);
  return present.length > 0 ? present.join(" ") : undefined;
}

/** A label above its input, an optional hint and the field's problems below. */
export function Field({
  label,
  hint,
  problems,
  className,
  children,
}: {
  label: string;
  hint?: ReactNode;
  problems?: Problem[];
  className?: string;
  children: (a11y: InputA11y) => ReactNode;
}) {
  const id = useId();
  const invalid = !!problems && problems.length > 0;
  return (
    <div className={`pf-field ${className ?? ""}`}>
      <label htmlFor={id}>{label}</label>
      {children({
        id,
        "aria-invalid": invalid || undefined,
        "aria-describedby": describedBy(hint ? `${id}-hint` : undefined, invalid && `${id}-error`),
      })}
      {hint ? (
        <small id={`${id}-hint`} className="pf-hint">
          {hint}
        </small>
      ) : null}
      <FieldErrors id={`${id}-error`} problems={problems} />
    </div>
  );
}

/** A checkbox with its label after it. */
export function CheckField({
  label,
  checked,
  onChange,
  hint,
  testId,
}: {
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
  hint?: ReactNode;
  testId?: string;
}) {
  const id = useId();
  return (
    <div className="pf-field pf-check">
      <label>
        <input
          type="checkbox"
          checked={checked}
          onChange={(e) => onChange(e.target.checked)}
          data-testid={testId}
          aria-describedby={hint ? `${id}-hint` : undefined}
        />{" "}
        {label}
      </label>
      {hint ? (
        <small id={`${id}-hint`} className="pf-hint">
          {hint}
        </small>
      ) : null}
    </div>
  );
}
