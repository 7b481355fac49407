// The project form's editable state (a draft) and its conversion to and from the API's
// ProjectCreate / ProjectUpdate / Project documents. Inputs hold strings (numbers, comma lists)
// until the form is sent; the conversion is the one place that turns them into API values.
import type { Project, Schemas } from "@/lib/api";
import { MEDIA_TYPES } from "@/lib/enums";
import { commaList } from "@/lib/lists";

export type MediaType = Schemas["MediaType"];
export type ControlType = Schemas["ControlType"];
export type AttributeType = Schemas["AttributeType"];
export type PriorityMode = Schemas["PriorityMode"];
export type ProjectSettings = Schemas["ProjectSettings"];
export type LabelConfig = Schemas["LabelConfig"];
export type ProjectCreate = Schemas["ProjectCreate"];
export type ProjectUpdate = Schemas["ProjectUpdate"];

// Records keyed by the schema's enums, so a value added to the API fails the typecheck here.
const CONTROLS: Record<ControlType, true> = {
  classification: true,
  bbox: true,
  polygon: true,
  keypoint: true,
  ner: true,
  transcription: true,
  audio_segments: true,
  video_bbox: true,
  pdf_page_class: true,
};
const ATTRIBUTES: Record<AttributeType, true> = { text: true, number: true, boolean: true, choice: true };
const PRIORITY: Record<PriorityMode, true> = { priority: true, fifo: true, random: true, least_confident: true };

export { MEDIA_TYPES };
export const CONTROL_TYPES = Object.keys(CONTROLS) as ControlType[];
export const ATTRIBUTE_TYPES = Object.keys(ATTRIBUTES) as AttributeType[];
export const PRIORITY_MODES = Object.keys(PRIORITY) as PriorityMode[];

/** Control types that take no classes (layers/serval/domain/label_config.py CLASSLESS). */
export const CLASSLESS: ReadonlySet<ControlType> = new Set(["transcription"]);
/** Control types where ``multiple`` applies. */
export const MULTIPLE: ReadonlySet<ControlType> = new Set(["classification", "pdf_page_class"]);
/** Control types with a skeleton (``keypoint_names``). */
export const KEYPOINTS: ReadonlySet<ControlType> = new Set(["keypoint"]);

export const NAME_PATTERN = /^[A-Za-z0-9_.\- ]+$/;
export const PROJECT_NAME_MAX = 200;
export const DESCRIPTION_MAX = 5000;
export const INSTRUCTIONS_MAX = 20000;
export const SPEC_NAME_MAX = 64;

type SettingKey = keyof ProjectSettings;
export type SettingSpec =
  | { key: SettingKey; kind: "number"; min: number; max: number; step: number; integer: boolean; default: number }
  | { key: SettingKey; kind: "boolean"; default: boolean }
  | { key: SettingKey; kind: "enum"; options: readonly string[]; default: string };

/** Every ProjectSettings field with its bounds and default, as docs/openapi.json declares them
 * (tests/browser/test_project_form.py compares the defaults with the document). */
export const SETTINGS = [
  { key: "overlap", kind: "number", min: 1, max: 10, step: 1, integer: true, default: 1 },
  { key: "agreement_threshold", kind: "number", min: 0, max: 1, step: 0.01, integer: false, default: 0.8 },
  { key: "auto_label_threshold", kind: "number", min: 0, max: 1, step: 0.01, integer: false, default: 0.9 },
  { key: "gold_rate", kind: "number", min: 0, max: 1, step: 0.01, integer: false, default: 0 },
  { key: "max_rework_rounds", kind: "number", min: 0, max: 20, step: 1, integer: true, default: 3 },
  { key: "priority_mode", kind: "enum", options: PRIORITY_MODES, default: "priority" },
  { key: "annotators_see_all", kind: "boolean", default: false },
] as const satisfies readonly SettingSpec[];

// Fails the typecheck when ProjectSettings gains a field SETTINGS lacks.
type Covered = (typeof SETTINGS)[number]["key"];
const everySettingCovered: Record<Exclude<SettingKey, Covered>, never> = {};
void everySettingCovered;

let counter = 0;
/** A stable React key for a list item the user may add or remove. */
function newKey(): string {
  counter += 1;
  return `k${counter}`;
}

export interface AttributeDraft {
  key: string;
  name: string;
  type: AttributeType;
  choices: string;
  required: boolean;
}

export interface ClassDraft {
  key: string;
  name: string;
  color: string;
  hotkey: string;
  attributes: AttributeDraft[];
}

export interface ControlDraft {
  key: string;
  name: string;
  type: ControlType;
  source: string;
  required: boolean;
  multiple: boolean;
  keypointNames: string;
  classes: ClassDraft[];
  attributes: AttributeDraft[];
}

export interface Draft {
  name: string;
  description: string;
  mediaTypes: MediaType[];
  /** Numbers as the inputs hold them (strings), booleans and enum values as they are. */
  settings: Record<string, string | boolean>;
  instructions: string;
  controls: ControlDraft[];
}

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#008080", "#9a6324"];

export function newAttribute(): AttributeDraft {
  return { key: newKey(), name: "", type: "text", choices: "", required: false };
}

export function newClass(index: number): ClassDraft {
  return { key: newKey(), name: "", color: PALETTE[index % PALETTE.length], hotkey: "", attributes: [] };
}

export function newControl(): ControlDraft {
  return {
    key: newKey(),
    name: "",
    type: "classification",
    source: "",
    required: false,
    multiple: false,
    keypointNames: "",
    classes: [],
    attributes: [],
  };
}

export function emptyDraft(): Draft {
  return {
    name: "",
    description: "",
    mediaTypes: [],
    settings: Object.fromEntries(SETTINGS.map((s) => [s.key, s.kind === "number" ? String(s.default) : s.default])),
    instructions: "",
    controls: [],
  };
}

function attributeDraft(a: Schemas["AttributeSpec"]): AttributeDraft {
  return { key: newKey(), name: a.name, type: a.type, choices: (a.choices ?? []).join(", "), required: a.required };
}

export function draftOf(project: Project): Draft {
  const settings = project.settings as unknown as Record<string, number | boolean | string>;
  return {
    name: project.name,
    description: project.description,
    mediaTypes: MEDIA_TYPES.filter((m) => project.media_types.includes(m)),
    settings: Object.fromEntries(
      SETTINGS.map((s) => {
        const value = settings[s.key] ?? s.default;
        return [s.key, typeof value === "number" ? String(value) : value];
      }),
    ),
    instructions: project.label_config.instructions,
    controls: project.label_config.controls.map((c) => ({
      key: newKey(),
      name: c.name,
      type: c.type,
      source: c.source ?? "",
      required: c.required,
      multiple: c.multiple,
      keypointNames: (c.keypoint_names ?? []).join(", "),
      classes: (c.classes ?? []).map((k) => ({
        key: newKey(),
        name: k.name,
        color: k.color ?? "",
        hotkey: k.hotkey ?? "",
        attributes: (k.attributes ?? []).map(attributeDraft),
      })),
      attributes: (c.attributes ?? []).map(attributeDraft),
    })),
  };
}

export { commaList };

function attributeSpec(a: AttributeDraft): Schemas["AttributeSpec"] {
  return { name: a.name.trim(), type: a.type, choices: a.type === "choice" ? commaList(a.choices) : [], required: a.required };
}

export function labelConfigOf(draft: Draft, version = 1): LabelConfig {
  return {
    version,
    instructions: draft.instructions,
    controls: draft.controls.map((c) => ({
      name: c.name.trim(),
      type: c.type,
      source: c.source.trim() === "" ? null : c.source.trim(),
      required: c.required,
      multiple: MULTIPLE.has(c.type) ? c.multiple : false,
      keypoint_names: KEYPOINTS.has(c.type) ? commaList(c.keypointNames) : [],
      classes: CLASSLESS.has(c.type)
        ? []
        : c.classes.map((k) => ({
            name: k.name.trim(),
            color: k.color === "" ? null : k.color,
            hotkey: k.hotkey === "" ? null : k.hotkey,
            attributes: k.attributes.map(attributeSpec),
          })),
      attributes: c.attributes.map(attributeSpec),
    })),
  };
}

export function settingsOf(draft: Draft): ProjectSettings {
  const values = Object.fromEntries(
    SETTINGS.map((s) => {
      const raw = draft.settings[s.key];
      return [s.key, s.kind === "number" ? Number(raw) : raw];
    }),
  );
  return values as unknown as ProjectSettings;
}

export function createOf(draft: Draft): ProjectCreate {
  return {
    name: draft.name.trim(),
    description: draft.description,
    media_types: draft.mediaTypes,
    settings: settingsOf(draft),
    label_config: labelConfigOf(draft),
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The fields of ``draft`` that differ from ``before`` (ProjectUpdate has no version: the API
 * bumps the label configuration's version itself when the controls change). */
export function updateOf(before: Project, draft: Draft): ProjectUpdate {
  const baseline = draftOf(before);
  const change: ProjectUpdate = {};
  const after = createOf(draft);
  const was = createOf(baseline);
  if (after.name !== was.name) change.name = after.name;
  if (after.description !== was.description) change.description = after.description;
  if (!same(after.media_types, was.media_types)) change.media_types = after.media_types;
  if (!same(after.settings, was.settings)) change.settings = after.settings;
  if (!same(after.label_config, was.label_config)) change.label_config = labelConfigOf(draft, before.label_config.version);
  return change;
}
