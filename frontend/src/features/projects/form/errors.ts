// Where the form shows a problem. Each field has a path, the request body's location of its value
// joined with "." (``name``, ``settings.overlap``, ``label_config.controls.0.classes.1.name``), so
// the form's own checks and the API's 422 details land at the same place.
import type { ErrorDetail } from "@/lib/api";
import {
  CLASSLESS,
  DESCRIPTION_MAX,
  type Draft,
  INSTRUCTIONS_MAX,
  NAME_PATTERN,
  PROJECT_NAME_MAX,
  SETTINGS,
  SPEC_NAME_MAX,
  commaList,
} from "./draft";

/** A problem at a field: a catalogue key (the form's own checks) or the API's sentence. */
export type Problem = { key: string; params?: Record<string, unknown> } | { text: string };
export type Problems = Record<string, Problem[]>;

export const paths = {
  controls: "label_config.controls",
  control: (c: number) => `label_config.controls.${c}`,
  controlField: (c: number, field: string) => `label_config.controls.${c}.${field}`,
  klass: (c: number, k: number) => `label_config.controls.${c}.classes.${k}`,
  classField: (c: number, k: number, field: string) => `label_config.controls.${c}.classes.${k}.${field}`,
};

/** The path of the attributes list of a control (``cls`` undefined) or of one of its classes. */
export function attributesPath(c: number, cls?: number): string {
  return cls === undefined ? paths.controlField(c, "attributes") : paths.classField(c, cls, "attributes");
}

function add(problems: Problems, path: string, problem: Problem): void {
  (problems[path] ??= []).push(problem);
}

function checkSpecName(problems: Problems, path: string, name: string, requiredKey: string): void {
  const trimmed = name.trim();
  if (trimmed === "") add(problems, path, { key: requiredKey });
  else if (!NAME_PATTERN.test(trimmed)) add(problems, path, { key: "projectForm.errors.namePattern" });
  else if (trimmed.length > SPEC_NAME_MAX) add(problems, path, { key: "projectForm.errors.tooLong", params: { max: SPEC_NAME_MAX } });
}

function duplicates(names: string[]): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const n of names) {
    if (n === "") continue;
    if (seen.has(n)) twice.add(n);
    seen.add(n);
  }
  return twice;
}

/** The form's own checks; the API checks the rest (and everything again). */
export function validate(draft: Draft): Problems {
  const problems: Problems = {};
  const name = draft.name.trim();
  if (name === "") add(problems, "name", { key: "projectForm.errors.nameRequired" });
  else if (!NAME_PATTERN.test(name)) add(problems, "name", { key: "projectForm.errors.namePattern" });
  else if (name.length > PROJECT_NAME_MAX) add(problems, "name", { key: "projectForm.errors.tooLong", params: { max: PROJECT_NAME_MAX } });
  if (draft.description.length > DESCRIPTION_MAX) add(problems, "description", { key: "projectForm.errors.tooLong", params: { max: DESCRIPTION_MAX } });
  if (draft.mediaTypes.length === 0) add(problems, "media_types", { key: "projectForm.errors.mediaRequired" });
  for (const s of SETTINGS) {
    if (s.kind !== "number") continue;
    const raw = String(draft.settings[s.key]).trim();
    const value = Number(raw);
    if (raw === "" || !Number.isFinite(value) || (s.integer && !Number.isInteger(value)) || value < s.min || value > s.max) {
      add(problems, `settings.${s.key}`, { key: "projectForm.errors.range", params: { min: s.min, max: s.max } });
    }
  }
  if (draft.instructions.length > INSTRUCTIONS_MAX) {
    add(problems, "label_config.instructions", { key: "projectForm.errors.tooLong", params: { max: INSTRUCTIONS_MAX } });
  }
  if (draft.controls.length === 0) add(problems, paths.controls, { key: "projectForm.errors.controlsRequired" });
  const twiceControls = duplicates(draft.controls.map((c) => c.name.trim()));
  draft.controls.forEach((control, c) => {
    checkSpecName(problems, paths.controlField(c, "name"), control.name, "projectForm.errors.controlNameRequired");
    if (twiceControls.has(control.name.trim())) add(problems, paths.controlField(c, "name"), { key: "projectForm.errors.duplicateControl" });
    control.attributes.forEach((a, i) => checkAttribute(problems, `${attributesPath(c)}.${i}`, a));
    if (CLASSLESS.has(control.type)) return;
    const twiceClasses = duplicates(control.classes.map((k) => k.name.trim()));
    control.classes.forEach((cls, k) => {
      checkSpecName(problems, paths.classField(c, k, "name"), cls.name, "projectForm.errors.classNameRequired");
      if (twiceClasses.has(cls.name.trim())) {
        add(problems, paths.classField(c, k, "name"), { key: "projectForm.errors.duplicateClass", params: { name: cls.name.trim() } });
      }
      cls.attributes.forEach((a, i) => checkAttribute(problems, `${attributesPath(c, k)}.${i}`, a));
    });
  });
  return problems;
}

function checkAttribute(problems: Problems, path: string, attribute: Draft["controls"][number]["attributes"][number]): void {
  checkSpecName(problems, `${path}.name`, attribute.name, "projectForm.errors.attributeNameRequired");
  if (attribute.type === "choice" && commaList(attribute.choices).length === 0) {
    add(problems, `${path}.choices`, { key: "projectForm.errors.choicesRequired" });
  }
}

/** Every path the form shows problems at, for ``draft`` as it is rendered. */
export function fieldPaths(draft: Draft): Set<string> {
  const all = new Set(["name", "description", "media_types", "label_config.instructions", paths.controls]);
  for (const s of SETTINGS) all.add(`settings.${s.key}`);
  const attributes = (base: string, count: number) => {
    for (let i = 0; i < count; i++) for (const f of ["", ".name", ".type", ".choices"]) all.add(`${base}.${i}${f}`);
  };
  draft.controls.forEach((control, c) => {
    all.add(paths.control(c));
    for (const f of ["name", "type", "source", "keypoint_names", "multiple"]) all.add(paths.controlField(c, f));
    attributes(attributesPath(c), control.attributes.length);
    control.classes.forEach((cls, k) => {
      all.add(paths.klass(c, k));
      for (const f of ["name", "color", "hotkey"]) all.add(paths.classField(c, k, f));
      attributes(attributesPath(c, k), cls.attributes.length);
    });
  });
  return all;
}

/** The API's 422 details: those at a field of the form (the longest shown prefix of their
 * location, less the leading "body"), and the rest, for the page's error message. */
export function routeDetails(details: unknown[], shown: Set<string>): { problems: Problems; rest: ErrorDetail[] } {
  const problems: Problems = {};
  const rest: ErrorDetail[] = [];
  for (const raw of details) {
    const detail: ErrorDetail = typeof raw === "object" && raw !== null ? (raw as ErrorDetail) : { message: String(raw) };
    const location = (detail.location ?? []).map(String);
    const parts = location[0] === "body" ? location.slice(1) : location;
    let path: string | undefined;
    for (let n = parts.length; n > 0 && path === undefined; n--) {
      const candidate = parts.slice(0, n).join(".");
      if (shown.has(candidate)) path = candidate;
    }
    if (path !== undefined && detail.message) add(problems, path, { text: detail.message });
    else rest.push(detail);
  }
  return { problems, rest };
}

export function merge(a: Problems, b: Problems): Problems {
  const out: Problems = { ...a };
  for (const [path, list] of Object.entries(b)) out[path] = [...(out[path] ?? []), ...list];
  return out;
}
