// One region in a workspace's list: its class (a select when editable), what it is, its
// pre-label mark with accept, delete, its attributes (the control's and its class's, edited in
// place), and the API's problem with it, if any. Shared by every workspace that draws regions.
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import type { ControlSpec, Schemas } from "@/lib/api";
import type { Region } from "./regions";
import { colorOf } from "./results";

type AttributeSpec = Schemas["AttributeSpec"];
type Value = string | number | boolean;

export interface RegionItemProps {
  region: Region;
  control: ControlSpec | undefined;
  selected: boolean;
  readOnly: boolean;
  error: string | undefined;
  onChange: (next: Region) => void;
  onDelete: () => void;
  /** what the region covers: its shape's name, or the text of a span */
  children: ReactNode;
  /** extra data-* attributes of the list item, for the page's tests and styles */
  data?: Record<string, string | number>;
}

export function attributeSpecs(control: ControlSpec | undefined, label: string): AttributeSpec[] {
  if (!control) return [];
  const ofClass = (control.classes ?? []).find((c) => c.name === label)?.attributes ?? [];
  return [...(control.attributes ?? []), ...ofClass];
}

function AttributeInput({ spec, value, disabled, onChange }: { spec: AttributeSpec; value: Value | undefined; disabled: boolean; onChange: (v: Value | undefined) => void }) {
  const { t } = useTranslation();
  const common = { disabled, "data-testid": `attribute-${spec.name}`, "aria-required": spec.required || undefined };
  if (spec.type === "boolean")
    return <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  if (spec.type === "choice")
    return (
      <select {...common} value={value === undefined ? "" : String(value)} onChange={(e) => onChange(e.target.value || undefined)}>
        <option value="">{t("workspace.attributeUnset")}</option>
        {(spec.choices ?? []).map((c) => (
          <option key={c} value={c} translate="no">
            {c}
          </option>
        ))}
      </select>
    );
  if (spec.type === "number")
    return <input type="number" step="any" {...common} value={typeof value === "number" ? value : ""} onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))} />;
  return <input {...common} value={typeof value === "string" ? value : ""} maxLength={1000} onChange={(e) => onChange(e.target.value || undefined)} />;
}

export function RegionItem({ region, control, selected, readOnly, error, onChange, onDelete, children, data = {} }: RegionItemProps) {
  const { t } = useTranslation();
  const specs = attributeSpecs(control, region.label);
  const dataAttributes = Object.fromEntries(Object.entries(data).map(([k, v]) => [`data-${k}`, v]));
  const setAttribute = (name: string, value: Value | undefined) => {
    const next = { ...region.attributes };
    if (value === undefined) delete next[name];
    else next[name] = value;
    onChange({ ...region, attributes: next });
  };
  return (
    <li className={selected ? "region region-selected" : "region"} data-testid="region" data-label={region.label} data-control={region.control} data-prelabel={region.score !== null ? "true" : "false"} {...dataAttributes}>
      <span className="swatch" style={{ background: control ? colorOf(control, region.label) : "#888" }} />
      {readOnly || !control ? (
        <span translate="no">{region.label}</span>
      ) : (
        <select value={region.label} onChange={(e) => onChange({ ...region, label: e.target.value })} aria-label={t("workspace.label")}>
          {(control.classes ?? []).map((c) => (
            <option key={c.name} value={c.name} translate="no">
              {c.name}
            </option>
          ))}
        </select>
      )}
      {children}
      {region.score !== null ? (
        <span className="badge badge-prediction" data-testid="prelabel">
          {t("workspace.prelabel", { score: Math.round(region.score * 100) })}
        </span>
      ) : null}
      {!readOnly && region.score !== null ? (
        <button type="button" className="link" onClick={() => onChange({ ...region, score: null })} data-testid="accept-prelabel">
          {t("workspace.accept")}
        </button>
      ) : null}
      {!readOnly ? (
        <button type="button" className="link danger" onClick={onDelete} data-testid="delete-region">
          {t("common.delete")}
        </button>
      ) : null}
      {specs.length > 0 ? (
        <div className="region-attributes">
          {specs.map((spec) => (
            <label key={spec.name} className="inline">
              <span translate="no">{spec.name}</span>
              {spec.required ? <span className="muted">{t("workspace.required")}</span> : null}
              <AttributeInput spec={spec} value={region.attributes[spec.name]} disabled={readOnly} onChange={(v) => setAttribute(spec.name, v)} />
            </label>
          ))}
        </div>
      ) : null}
      {error ? (
        <p className="field-error" data-testid="region-error">
          {error}
        </p>
      ) : null}
    </li>
  );
}
