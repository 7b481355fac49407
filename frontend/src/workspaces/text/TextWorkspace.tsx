// The text workspace: NER spans with Recogito's text annotator, classification beside. The DOM
// counts offsets in UTF-16 code units, the API in code points: lib/units converts both ways.
import { createTextAnnotator, type TextAnnotation, type TextAnnotator } from "@recogito/text-annotator";
import "@recogito/text-annotator/text-annotator.css";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { codePointsToUtf16, sliceCodePoints, utf16ToCodePoints } from "@/lib/units";
import { ClassificationControls } from "../classification/ClassificationControls";
import { type Region, placeErrors, regionsOf, resultsOf } from "../regions";
import { Palette } from "../Palette";
import { RegionItem } from "../RegionItem";
import { colorOf, hotkeysOf, typingInto } from "../results";
import type { WorkspaceProps } from "../types";
import "../workspace.css";

function textOf(task: WorkspaceProps["task"], source: string | null | undefined): string {
  const data = task.data as Record<string, { kind?: string; text?: string }>;
  const ref = (source && data[source]) || Object.values(data).find((v) => v?.kind === "text");
  return ref?.text ?? "";
}

function toAnnotation(region: Region, text: string): TextAnnotation | undefined {
  if (region.shape.kind !== "span") return undefined;
  const start = codePointsToUtf16(text, region.shape.start);
  const end = codePointsToUtf16(text, region.shape.end);
  return {
    id: region.id,
    bodies: [{ id: `${region.id}-label`, annotation: region.id, purpose: "tagging", value: region.label }],
    target: { annotation: region.id, selector: [{ quote: text.slice(start, end), start, end }] },
  } as unknown as TextAnnotation;
}

export default function TextWorkspace({ task, config, results, onChange, rejected, errors }: WorkspaceProps) {
  const { t } = useTranslation();
  const readOnly = !onChange;
  const ner = config.controls.find((c) => c.type === "ner");
  const classifications = useMemo(() => config.controls.filter((c) => c.type === "classification"), [config]);
  const text = textOf(task, ner?.source);
  const [regions, setRegions] = useState<Region[]>(() => regionsOf(results));
  const [activeClass, setActiveClass] = useState(ner?.classes?.[0]?.name);
  const [selected, setSelectedState] = useState<string>();
  // the selection as the key handler must see it: set at once, before the next render
  const selectedNow = useRef<string | undefined>(undefined);
  const setSelected = useCallback((id: string | undefined) => {
    selectedNow.current = id;
    setSelectedState(id);
  }, []);
  const container = useRef<HTMLDivElement>(null);
  const anno = useRef<TextAnnotator>(null);
  const latest = useRef({ regions, results, activeClass });
  latest.current = { regions, results, activeClass };

  const emit = useCallback(
    (next: Region[]) => {
      // the ref too, at once: a key pressed before the next render must see this region
      latest.current = { ...latest.current, regions: next };
      setRegions(next);
      onChange?.(resultsOf(next, config.controls, latest.current.results));
    },
    [onChange, config.controls],
  );

  useEffect(() => {
    if (!container.current || !ner) return;
    const annotator = createTextAnnotator<TextAnnotation, TextAnnotation>(container.current, {
      annotatingEnabled: !readOnly,
      style: (a: TextAnnotation) => {
        const region = latest.current.regions.find((g) => g.id === a.id);
        return { fill: region ? colorOf(ner, region.label) : "#999", fillOpacity: region?.score !== null && region?.score !== undefined ? 0.2 : 0.4 };
      },
    } as never);
    annotator.setAnnotations(latest.current.regions.flatMap((g) => toAnnotation(g, text) ?? []) as never);
    annotator.on("createAnnotation", (a) => {
      const selector = a.target.selector[0];
      const label = latest.current.activeClass;
      if (!selector || !label || selector.end <= selector.start) return;
      const start = utf16ToCodePoints(text, selector.start);
      const end = utf16ToCodePoints(text, selector.end);
      const region: Region = { id: a.id, control: ner.name, label, score: null, attributes: {}, shape: { kind: "span", start, end, text: sliceCodePoints(text, start, end) } };
      emit([...latest.current.regions, region]);
      setSelected(a.id);
    });
    annotator.on("deleteAnnotation", (a) => emit(latest.current.regions.filter((g) => g.id !== a.id)));
    annotator.on("selectionChanged", (selection) => setSelected(selection[0]?.id));
    anno.current = annotator;
    return () => {
      annotator.destroy();
      anno.current = null;
    };
  }, [ner, readOnly, text, emit]);

  const relabel = useCallback(
    (id: string, label: string) => {
      const next = latest.current.regions.map((g) => (g.id === id ? { ...g, label, score: null } : g));
      emit(next);
      const region = next.find((g) => g.id === id);
      if (region && anno.current) anno.current.updateAnnotation(toAnnotation(region, text) as never);
    },
    [emit, text],
  );
  /** A span edited in the list: a new class goes through relabel (the highlight's colour too). */
  const change = (next: Region) => {
    const before = latest.current.regions.find((g) => g.id === next.id);
    if (before && before.label !== next.label) relabel(next.id, next.label);
    else emit(latest.current.regions.map((g) => (g.id === next.id ? next : g)));
  };

  const remove = useCallback(
    (id: string) => {
      anno.current?.removeAnnotation(id);
      emit(latest.current.regions.filter((g) => g.id !== id));
      setSelected(undefined);
    },
    [emit],
  );

  useEffect(() => {
    if (readOnly || !ner) return;
    const keys = hotkeysOf(ner);
    const onKey = (event: KeyboardEvent) => {
      if (typingInto(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      const label = keys.get(event.key.toLowerCase());
      if (label) {
        event.preventDefault();
        latest.current = { ...latest.current, activeClass: label }; // a span made before the render takes it
        setActiveClass(label);
        if (selectedNow.current) relabel(selectedNow.current, label);
      } else if ((event.key === "Delete" || event.key === "Backspace") && selectedNow.current) {
        event.preventDefault();
        remove(selectedNow.current);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [readOnly, ner, selected, relabel, remove]);

  const rejectedSpans = regionsOf(rejected ?? []).filter((g) => g.shape.kind === "span");
  const { regionErrors, controlErrors } = placeErrors(errors, resultsOf(regions, config.controls, results), regions);
  return (
    <div className="workspace text-workspace" data-testid="text-workspace" data-ready="true">
      {ner && !readOnly ? (
        <Palette control={ner} active={activeClass} onPick={(name) => { setActiveClass(name); if (selected) relabel(selected, name); }} />
      ) : null}
      <div className="workspace-body">
        <div ref={container} className="text-body" data-testid="task-text">
          {text}
        </div>
        <aside className="sidebar">
          <ClassificationControls controls={classifications} results={results} onChange={onChange} errors={controlErrors} />
          {rejectedSpans.length > 0 ? (
            <>
              <h3>{t("workspace.rejectedRegions")}</h3>
              <ul>
                {rejectedSpans.map((g) => g.shape.kind === "span" ? <li key={g.id} className="rejected-span">{g.label}: “{sliceCodePoints(text, g.shape.start, g.shape.end)}”</li> : null)}
              </ul>
            </>
          ) : null}
          <h3>{t("workspace.regions", { count: regions.length })}</h3>
          <ol className="region-list" data-testid="region-list">
            {regions.map((g) =>
              g.shape.kind === "span" ? (
                <RegionItem key={g.id} region={g} control={ner} selected={g.id === selected} readOnly={readOnly} error={regionErrors.get(g.id)} onChange={change} onDelete={() => remove(g.id)} data={{ start: g.shape.start, end: g.shape.end }}>
                  <q translate="no">{sliceCodePoints(text, g.shape.start, g.shape.end)}</q>
                </RegionItem>
              ) : null,
            )}
          </ol>
        </aside>
      </div>
    </div>
  );
}
