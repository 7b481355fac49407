// The label configuration's controls: each with its type, options, classes and attributes.
// Adding or removing an item "reshapes" the list (the API's problems, located by index, are
// then dropped, since their indexes no longer point at the same items).
import { useTranslation } from "react-i18next";
import {
  ATTRIBUTE_TYPES,
  type AttributeDraft,
  type AttributeType,
  CLASSLESS,
  CONTROL_TYPES,
  type ClassDraft,
  type ControlDraft,
  type ControlType,
  KEYPOINTS,
  MULTIPLE,
  SPEC_NAME_MAX,
  newAttribute,
  newClass,
  newControl,
} from "./draft";
import { attributesPath, type Problems, paths } from "./errors";
import { CheckField, Field, FieldErrors } from "./fields";

type Change<T> = (next: T, reshaped?: boolean) => void;

function replaceAt<T>(list: T[], index: number, item: T): T[] {
  return list.map((x, i) => (i === index ? item : x));
}

function removeAt<T>(list: T[], index: number): T[] {
  return list.filter((_, i) => i !== index);
}

export function ControlsEditor({ controls, problems, onChange }: { controls: ControlDraft[]; problems: Problems; onChange: Change<ControlDraft[]> }) {
  const { t } = useTranslation();
  return (
    <div className="pf-controls">
      {controls.length === 0 ? <p className="muted">{t("projectForm.controls.none")}</p> : null}
      {controls.map((control, c) => (
        <ControlBox
          key={control.key}
          index={c}
          control={control}
          problems={problems}
          onChange={(next, reshaped) => onChange(replaceAt(controls, c, next), reshaped)}
          onRemove={() => onChange(removeAt(controls, c), true)}
        />
      ))}
      <FieldErrors problems={problems[paths.controls]} />
      <div>
        <button type="button" onClick={() => onChange([...controls, newControl()], true)} data-testid="pf-add-control">
          {t("projectForm.controls.add")}
        </button>
      </div>
    </div>
  );
}

function ControlBox({
  index: c,
  control,
  problems,
  onChange,
  onRemove,
}: {
  index: number;
  control: ControlDraft;
  problems: Problems;
  onChange: Change<ControlDraft>;
  onRemove: () => void;
}) {
  const { t } = useTranslation();
  const set = (patch: Partial<ControlDraft>) => onChange({ ...control, ...patch });
  const title = control.name.trim() || t("projectForm.controls.untitled", { number: c + 1 });
  const classes = control.classes;
  return (
    <fieldset className="pf-box pf-control" data-testid="control" data-index={c}>
      <legend translate={control.name.trim() ? "no" : undefined}>{title}</legend>
      <FieldErrors problems={problems[paths.control(c)]} />
      <div className="pf-row">
        <Field label={t("projectForm.controls.name")} problems={problems[paths.controlField(c, "name")]}>
          {(a11y) => (
            <input {...a11y} value={control.name} maxLength={SPEC_NAME_MAX} onChange={(e) => set({ name: e.target.value })} data-testid="control-name" />
          )}
        </Field>
        <Field label={t("projectForm.controls.type")} problems={problems[paths.controlField(c, "type")]}>
          {(a11y) => (
            <select {...a11y} value={control.type} onChange={(e) => set({ type: e.target.value as ControlType })} data-testid="control-type">
              {CONTROL_TYPES.map((type) => (
                <option key={type} value={type}>
                  {t(`projectForm.controlTypes.${type}`)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label={t("projectForm.controls.source")} hint={t("projectForm.controls.sourceHint")} problems={problems[paths.controlField(c, "source")]}>
          {(a11y) => (
            <input
              {...a11y}
              value={control.source}
              placeholder={t("projectForm.controls.sourcePlaceholder")}
              onChange={(e) => set({ source: e.target.value })}
              data-testid="control-source"
            />
          )}
        </Field>
      </div>
      <div className="pf-row">
        <CheckField label={t("projectForm.controls.required")} checked={control.required} onChange={(required) => set({ required })} testId="control-required" />
        {MULTIPLE.has(control.type) ? (
          <CheckField label={t("projectForm.controls.multiple")} checked={control.multiple} onChange={(multiple) => set({ multiple })} testId="control-multiple" />
        ) : null}
      </div>
      {KEYPOINTS.has(control.type) ? (
        <Field label={t("projectForm.controls.keypointNames")} hint={t("projectForm.commaHint")} problems={problems[paths.controlField(c, "keypoint_names")]}>
          {(a11y) => (
            <input
              {...a11y}
              value={control.keypointNames}
              placeholder={t("projectForm.controls.keypointPlaceholder")}
              onChange={(e) => set({ keypointNames: e.target.value })}
              data-testid="control-keypoints"
            />
          )}
        </Field>
      ) : null}
      {CLASSLESS.has(control.type) ? (
        <p className="muted">{t("projectForm.classes.classless")}</p>
      ) : (
        <div className="pf-classes">
          <h4>{t("projectForm.classes.title")}</h4>
          <FieldErrors problems={problems[paths.controlField(c, "classes")]} />
          {classes.map((cls, k) => (
            <ClassRow
              key={cls.key}
              control={c}
              index={k}
              cls={cls}
              problems={problems}
              onChange={(next, reshaped) => onChange({ ...control, classes: replaceAt(classes, k, next) }, reshaped)}
              onRemove={() => onChange({ ...control, classes: removeAt(classes, k) }, true)}
            />
          ))}
          <div>
            <button type="button" onClick={() => onChange({ ...control, classes: [...classes, newClass(classes.length)] }, true)} data-testid="add-class">
              {t("projectForm.classes.add")}
            </button>
          </div>
        </div>
      )}
      <AttributesEditor
        title={t("projectForm.attributes.title")}
        base={attributesPath(c)}
        attributes={control.attributes}
        problems={problems}
        onChange={(attributes, reshaped) => onChange({ ...control, attributes }, reshaped)}
        testPrefix=""
      />
      <div className="pf-box-actions">
        <button type="button" className="danger" onClick={onRemove} data-testid="remove-control">
          {t("projectForm.controls.remove", { name: title })}
        </button>
      </div>
    </fieldset>
  );
}

function ClassRow({
  control: c,
  index: k,
  cls,
  problems,
  onChange,
  onRemove,
}: {
  control: number;
  index: number;
  cls: ClassDraft;
  problems: Problems;
  onChange: Change<ClassDraft>;
  onRemove: () => void;
}) {
  const { t } = useTranslation();
  const set = (patch: Partial<ClassDraft>) => onChange({ ...cls, ...patch });
  const label = cls.name.trim() || t("projectForm.classes.untitled", { number: k + 1 });
  return (
    <div className="pf-class" data-testid="class" data-index={k}>
      <FieldErrors problems={problems[paths.klass(c, k)]} />
      <div className="pf-row">
        <Field label={t("projectForm.classes.name")} problems={problems[paths.classField(c, k, "name")]}>
          {(a11y) => <input {...a11y} value={cls.name} maxLength={SPEC_NAME_MAX} onChange={(e) => set({ name: e.target.value })} data-testid="class-name" />}
        </Field>
        <Field label={t("projectForm.classes.color")} problems={problems[paths.classField(c, k, "color")]} className="pf-narrow">
          {(a11y) => <input {...a11y} type="color" value={cls.color || "#000000"} onChange={(e) => set({ color: e.target.value })} data-testid="class-color" />}
        </Field>
        <Field label={t("projectForm.classes.hotkey")} problems={problems[paths.classField(c, k, "hotkey")]} className="pf-narrow">
          {(a11y) => (
            <input
              {...a11y}
              className="pf-hotkey"
              value={cls.hotkey}
              maxLength={1}
              onChange={(e) => set({ hotkey: e.target.value.slice(-1) })}
              data-testid="class-hotkey"
            />
          )}
        </Field>
        <div className="pf-row-end">
          <button type="button" className="danger" onClick={onRemove} aria-label={t("projectForm.classes.remove", { name: label })} data-testid="remove-class">
            {t("projectForm.remove")}
          </button>
        </div>
      </div>
      <AttributesEditor
        title={t("projectForm.attributes.classTitle", { name: label })}
        base={attributesPath(c, k)}
        attributes={cls.attributes}
        problems={problems}
        onChange={(attributes, reshaped) => onChange({ ...cls, attributes }, reshaped)}
        testPrefix="class-"
        compact
      />
    </div>
  );
}

/** The attributes of a control or of a class (``testPrefix`` tells the two apart in tests). */
function AttributesEditor({
  title,
  base,
  attributes,
  problems,
  onChange,
  testPrefix,
  compact = false,
}: {
  title: string;
  base: string;
  attributes: AttributeDraft[];
  problems: Problems;
  onChange: Change<AttributeDraft[]>;
  testPrefix: string;
  compact?: boolean;
}) {
  const { t } = useTranslation();
  return (
    <div className={compact ? "pf-attributes pf-compact" : "pf-attributes"}>
      {compact && attributes.length === 0 ? null : <h4>{title}</h4>}
      <FieldErrors problems={problems[base]} />
      {attributes.map((attribute, i) => {
        const path = `${base}.${i}`;
        const set = (patch: Partial<AttributeDraft>) => onChange(replaceAt(attributes, i, { ...attribute, ...patch }));
        const label = attribute.name.trim() || t("projectForm.attributes.untitled", { number: i + 1 });
        return (
          <div key={attribute.key} className="pf-attribute" data-testid={`${testPrefix}attribute`} data-index={i}>
            <FieldErrors problems={problems[path]} />
            <div className="pf-row">
              <Field label={t("projectForm.attributes.name")} problems={problems[`${path}.name`]}>
                {(a11y) => (
                  <input {...a11y} value={attribute.name} maxLength={SPEC_NAME_MAX} onChange={(e) => set({ name: e.target.value })} data-testid={`${testPrefix}attribute-name`} />
                )}
              </Field>
              <Field label={t("projectForm.attributes.type")} problems={problems[`${path}.type`]}>
                {(a11y) => (
                  <select {...a11y} value={attribute.type} onChange={(e) => set({ type: e.target.value as AttributeType })} data-testid={`${testPrefix}attribute-type`}>
                    {ATTRIBUTE_TYPES.map((type) => (
                      <option key={type} value={type}>
                        {t(`projectForm.attributeTypes.${type}`)}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              {attribute.type === "choice" ? (
                <Field label={t("projectForm.attributes.choices")} hint={t("projectForm.commaHint")} problems={problems[`${path}.choices`]}>
                  {(a11y) => (
                    <input
                      {...a11y}
                      value={attribute.choices}
                      placeholder={t("projectForm.attributes.choicesPlaceholder")}
                      onChange={(e) => set({ choices: e.target.value })}
                      data-testid={`${testPrefix}attribute-choices`}
                    />
                  )}
                </Field>
              ) : null}
              <CheckField
                label={t("projectForm.attributes.required")}
                checked={attribute.required}
                onChange={(required) => set({ required })}
                testId={`${testPrefix}attribute-required`}
              />
              <div className="pf-row-end">
                <button
                  type="button"
                  className="danger"
                  onClick={() => onChange(removeAt(attributes, i), true)}
                  aria-label={t("projectForm.attributes.remove", { name: label })}
                  data-testid={`${testPrefix}remove-attribute`}
                >
                  {t("projectForm.remove")}
                </button>
              </div>
            </div>
          </div>
        );
      })}
      <div>
        <button
          type="button"
          className={compact ? "link" : undefined}
          onClick={() => onChange([...attributes, newAttribute()], true)}
          data-testid={`${testPrefix}add-attribute`}
        >
          {compact ? t("projectForm.attributes.addToClass") : t("projectForm.attributes.add")}
        </button>
      </div>
    </div>
  );
}
