// The image workspace: boxes and polygons with Annotorious, keypoints on an overlay of its own,
// classification controls beside; zoom and pan; a class palette with hotkeys.
import { createImageAnnotator, type ImageAnnotation, type ImageAnnotator } from "@annotorious/annotorious";
import "@annotorious/annotorious/annotorious.css";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { toPixels, toRelative, type Size } from "@/lib/units";
import { ClassificationControls } from "../classification/ClassificationControls";
import { type Region, newId, placeErrors, regionsOf, resultsOf } from "../regions";
import { Palette } from "../Palette";
import { RegionItem } from "../RegionItem";
import { colorOf, hotkeysOf, typingInto } from "../results";
import type { ControlSpec, WorkspaceProps } from "../types";
import { shapeOf, toAnnotation } from "./annotorious";
import "../workspace.css";

const DRAWING = ["bbox", "polygon", "keypoint"];
const ZOOMS = [0.5, 0.75, 1, 1.5, 2, 3, 4];

export default function ImageWorkspace({ task, config, results, onChange, rejected, errors }: WorkspaceProps) {
  const { t } = useTranslation();
  const readOnly = !onChange;
  const drawing = useMemo(() => config.controls.filter((c) => DRAWING.includes(c.type)), [config]);
  const classifications = useMemo(() => config.controls.filter((c) => c.type === "classification"), [config]);
  const field = Object.keys(task.media ?? {})[0];
  const url = field ? task.media?.[field]?.url : undefined;

  const [regions, setRegions] = useState<Region[]>(() => regionsOf(results));
  const rejectedRegions = useMemo(() => regionsOf(rejected ?? []), [rejected]);
  const [tool, setTool] = useState(0);
  const activeControl: ControlSpec | undefined = drawing[tool];
  const [activeClass, setActiveClass] = useState<string | undefined>(activeControl?.classes?.[0]?.name);
  const [selected, setSelected] = useState<string | undefined>();
  const [size, setSize] = useState<Size>();
  const [zoom, setZoom] = useState(1);
  const img = useRef<HTMLImageElement>(null);
  const stage = useRef<HTMLDivElement>(null);
  const anno = useRef<ImageAnnotator>(null);
  const shown = useShownSize(img, size);
  const drawn = useRef<string | undefined>(undefined); // the region drawn last: hotkeys relabel it
  const latest = useRef({ regions, results, activeClass, activeControl, size });
  latest.current = { regions, results, activeClass, activeControl, size };

  const emit = useCallback(
    (next: Region[]) => {
      // the ref too, at once: a key pressed before the next render must see this region
      latest.current = { ...latest.current, regions: next };
      setRegions(next);
      onChange?.(resultsOf(next, config.controls, latest.current.results));
    },
    [onChange, config.controls],
  );

  // Annotorious on the loaded image: the regions in, every user edit out
  useEffect(() => {
    if (!size || !img.current) return;
    const annotator = createImageAnnotator(img.current, {
      drawingEnabled: !readOnly,
      userSelectAction: readOnly ? "NONE" : "EDIT",
      style: (a: ImageAnnotation) => {
        const region = latest.current.regions.find((g) => g.id === a.id);
        const control = config.controls.find((c) => c.name === region?.control);
        const color = control && region ? colorOf(control, region.label) : "#888";
        return { fill: color, fillOpacity: region?.score !== null && region?.score !== undefined ? 0.05 : 0.18, stroke: color, strokeWidth: 2 };
      },
    } as never);
    annotator.setAnnotations(latest.current.regions.flatMap((g) => toAnnotation(g, size) ?? []));
    annotator.on("createAnnotation", (a: ImageAnnotation) => {
      const { activeControl: control, activeClass: label, regions: current, size: s } = latest.current;
      const shape = s && shapeOf(a, s);
      if (!control || !shape || !label) {
        annotator.removeAnnotation(a.id);
        return;
      }
      const region: Region = { id: a.id, control: control.name, label, score: null, attributes: {}, shape };
      emit([...current, region]);
      // Annotorious selects what was just drawn, and the next press would only deselect it: the
      // next shape starts at once instead, and the hotkeys still relabel this one
      drawn.current = a.id;
      setSelected(a.id);
      window.setTimeout(() => annotator.cancelSelected(), 0);
    });
    annotator.on("updateAnnotation", (a: ImageAnnotation) => {
      const { regions: current, size: s } = latest.current;
      const shape = s && shapeOf(a, s);
      if (!shape) return;
      emit(current.map((g) => (g.id === a.id ? { ...g, shape, score: null } : g)));
    });
    annotator.on("deleteAnnotation", (a: ImageAnnotation) => {
      emit(latest.current.regions.filter((g) => g.id !== a.id));
    });
    annotator.on("selectionChanged", (selection: ImageAnnotation[]) => {
      if (selection[0] && selection[0].id !== drawn.current) drawn.current = undefined;
      setSelected(selection[0]?.id ?? drawn.current);
    });
    anno.current = annotator;
    return () => {
      annotator.destroy();
      anno.current = null;
    };
  }, [size, readOnly, config.controls, emit]);

  // the drawing tool follows the active control
  useEffect(() => {
    const annotator = anno.current;
    if (!annotator || readOnly) return;
    annotator.cancelSelected(); // a selected shape would take the next press instead of the new tool
    drawn.current = undefined;
    setSelected(undefined);
    if (activeControl?.type === "polygon") {
      annotator.setDrawingTool("polygon");
      annotator.setDrawingMode("click"); // polygons draw point by point; drag mode silently does nothing
      annotator.setDrawingEnabled(true);
    } else if (activeControl?.type === "bbox") {
      annotator.setDrawingTool("rectangle");
      annotator.setDrawingMode("drag");
      annotator.setDrawingEnabled(true);
    } else {
      annotator.setDrawingEnabled(false);
    }
  }, [activeControl, readOnly, size]);

  useEffect(() => {
    setActiveClass(activeControl?.classes?.[0]?.name);
  }, [activeControl]);

  const relabel = useCallback(
    (id: string, label: string) => {
      const next = latest.current.regions.map((g) => (g.id === id ? { ...g, label, score: null } : g));
      emit(next);
      const region = next.find((g) => g.id === id);
      const annotator = anno.current;
      if (region && annotator && latest.current.size) {
        const a = toAnnotation(region, latest.current.size);
        if (a) annotator.updateAnnotation(a);
      }
    },
    [emit],
  );

  /** A region edited in the list: a new class goes through relabel (the drawing's colour too). */
  const change = (next: Region) => {
    const before = latest.current.regions.find((g) => g.id === next.id);
    if (before && before.label !== next.label) relabel(next.id, next.label);
    else emit(latest.current.regions.map((g) => (g.id === next.id ? next : g)));
  };

  const remove = useCallback(
    (id: string) => {
      anno.current?.removeAnnotation(id);
      emit(latest.current.regions.filter((g) => g.id !== id));
      drawn.current = undefined;
      setSelected(undefined);
    },
    [emit],
  );

  // hotkeys: a class of the active control (relabels the selected region too), Delete
  useEffect(() => {
    if (readOnly || !activeControl) return;
    const keys = hotkeysOf(activeControl);
    const onKey = (event: KeyboardEvent) => {
      if (typingInto(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      const label = keys.get(event.key.toLowerCase());
      if (label) {
        event.preventDefault();
        latest.current = { ...latest.current, activeClass: label }; // a shape drawn before the render takes it
        setActiveClass(label);
        // the region drawn last is known at once (a ref), before this listener sees the new selection
        const target = selected ?? drawn.current;
        const current = target && latest.current.regions.find((g) => g.id === target && g.control === activeControl.name);
        if (current) relabel(current.id, label);
      } else if ((event.key === "Delete" || event.key === "Backspace") && selected) {
        event.preventDefault();
        remove(selected);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [readOnly, activeControl, selected, relabel, remove]);

  // keypoints: each click places the next named point of the open instance
  const placeKeypoint = (event: React.MouseEvent<SVGSVGElement>) => {
    if (readOnly || activeControl?.type !== "keypoint" || !size || !activeClass) return;
    const box = (img.current ?? event.currentTarget).getBoundingClientRect();
    const x = toRelative(((event.clientX - box.left) / box.width) * size.width, size.width);
    const y = toRelative(((event.clientY - box.top) / box.height) * size.height, size.height);
    const names = activeControl.keypoint_names?.length ? activeControl.keypoint_names : ["point"];
    const open = regions.find((g) => g.control === activeControl.name && g.shape.kind === "keypoints" && g.shape.points.length < names.length);
    if (open && open.shape.kind === "keypoints") {
      const points = [...open.shape.points, { name: names[open.shape.points.length], x, y, visible: true }];
      emit(regions.map((g) => (g.id === open.id ? { ...g, shape: { kind: "keypoints", points } } : g)));
    } else {
      emit([...regions, { id: newId(), control: activeControl.name, label: activeClass, score: null, attributes: {}, shape: { kind: "keypoints", points: [{ name: names[0], x, y, visible: true }] } }]);
    }
  };

  // zoom with the buttons or Ctrl + wheel; pan by scrolling, or by dragging with Space held
  const zoomBy = (step: number) => setZoom((z) => ZOOMS[Math.min(ZOOMS.length - 1, Math.max(0, ZOOMS.indexOf(z) + step))] ?? 1);
  const [panning, setPanning] = useState(false);
  useEffect(() => {
    const down = (e: KeyboardEvent) => e.code === "Space" && !typingInto(e) && (e.preventDefault(), setPanning(true));
    const up = (e: KeyboardEvent) => e.code === "Space" && setPanning(false);
    window.addEventListener("keydown", down);
    window.addEventListener("keyup", up);
    return () => {
      window.removeEventListener("keydown", down);
      window.removeEventListener("keyup", up);
    };
  }, []);
  const drag = useRef<{ x: number; y: number } | null>(null);

  const { regionErrors, controlErrors } = placeErrors(errors, resultsOf(regions, config.controls, results), regions);

  if (!url) return <p className="error">{t("workspace.noMedia")}</p>;
  return (
    <div className="workspace image-workspace" data-testid="image-workspace" data-ready={size ? "true" : "false"}>
      <div className="toolbar" role="toolbar" aria-label={t("workspace.tools")}>
        {drawing.map((control, i) => (
          <button key={control.name} type="button" className={i === tool ? "tool tool-on" : "tool"} aria-pressed={i === tool} onClick={() => setTool(i)} data-testid={`tool-${control.name}`}>
            {t(`workspace.controlType.${control.type}`)}: <span translate="no">{control.name}</span>
          </button>
        ))}
        <span className="toolbar-gap" />
        <button type="button" onClick={() => zoomBy(-1)} aria-label={t("workspace.zoomOut")} data-testid="zoom-out">−</button>
        <span className="zoom" data-testid="zoom">{Math.round(zoom * 100)}%</span>
        <button type="button" onClick={() => zoomBy(1)} aria-label={t("workspace.zoomIn")} data-testid="zoom-in">+</button>
        <button type="button" onClick={() => setZoom(1)}>{t("workspace.fit")}</button>
      </div>
      {activeControl && !readOnly ? (
        <Palette control={activeControl} active={activeClass} onPick={(name) => { setActiveClass(name); if (selected) relabel(selected, name); }} />
      ) : null}
      <div className="workspace-body">
        <div
          ref={stage}
          className={panning ? "stage stage-panning" : "stage"}
          onWheel={(e) => {
            if (e.ctrlKey) {
              e.preventDefault();
              zoomBy(e.deltaY < 0 ? 1 : -1);
            }
          }}
          onPointerDownCapture={(e) => {
            if (panning) {
              e.stopPropagation();
              drag.current = { x: e.clientX, y: e.clientY };
            }
          }}
          onPointerMove={(e) => {
            if (panning && drag.current && stage.current) {
              stage.current.scrollLeft -= e.clientX - drag.current.x;
              stage.current.scrollTop -= e.clientY - drag.current.y;
              drag.current = { x: e.clientX, y: e.clientY };
            }
          }}
          onPointerUp={() => (drag.current = null)}
        >
          <div className="frame" style={{ inlineSize: `${zoom * 100}%` }}>
            <img
              ref={img}
              src={url}
              alt={task.external_id ?? task.task_id}
              draggable={false}
              onLoad={(e) => setSize({ width: e.currentTarget.naturalWidth, height: e.currentTarget.naturalHeight })}
              data-testid="task-image"
            />
            {size ? (
              <svg
                className={activeControl?.type === "keypoint" && !readOnly ? "overlay overlay-active" : "overlay"}
                viewBox={`0 0 ${size.width} ${size.height}`}
                preserveAspectRatio="none"
                style={shown ? { inlineSize: shown.width, blockSize: shown.height } : undefined} // the image's box, whatever else the frame holds
                onClick={placeKeypoint}
                data-testid="keypoint-overlay"
              >
                {regions.flatMap((g) =>
                  g.shape.kind === "keypoints"
                    ? g.shape.points.map((p) => (
                        <circle key={`${g.id}-${p.name}`} cx={toPixels(p.x, size.width)} cy={toPixels(p.y, size.height)} r={Math.max(3, size.width / 150)} fill={colorOf(config.controls.find((c) => c.name === g.control)!, g.label)}>
                          <title>{`${g.label} · ${p.name}`}</title>
                        </circle>
                      ))
                    : [],
                )}
                {rejectedRegions.flatMap((g) =>
                  g.shape.kind === "box"
                    ? [<rect key={g.id} className="rejected-region" x={toPixels(g.shape.x, size.width)} y={toPixels(g.shape.y, size.height)} width={toPixels(g.shape.w, size.width)} height={toPixels(g.shape.h, size.height)} />]
                    : g.shape.kind === "polygon"
                      ? [<polygon key={g.id} className="rejected-region" points={g.shape.points.map(([x, y]) => `${toPixels(x, size.width)},${toPixels(y, size.height)}`).join(" ")} />]
                      : [],
                )}
              </svg>
            ) : null}
          </div>
        </div>
        <aside className="sidebar">
          <ClassificationControls controls={classifications} results={results} onChange={onChange} errors={controlErrors} />
          <h3>{t("workspace.regions", { count: regions.length })}</h3>
          <ol className="region-list" data-testid="region-list">
            {regions.map((g) => (
              <RegionItem key={g.id} region={g} control={config.controls.find((c) => c.name === g.control)} selected={g.id === selected} readOnly={readOnly} error={regionErrors.get(g.id)} onChange={change} onDelete={() => remove(g.id)}>
                <span className="muted">{t(`workspace.shape.${g.shape.kind}`)}</span>
              </RegionItem>
            ))}
          </ol>
        </aside>
      </div>
    </div>
  );
}

/** The image's size on screen, kept up to date as it zooms or the window resizes. */
function useShownSize(img: React.RefObject<HTMLImageElement | null>, loaded: Size | undefined): Size | undefined {
  const [shown, setShown] = useState<Size>();
  useEffect(() => {
    const element = img.current;
    if (!element || !loaded) return;
    const measure = () => setShown({ width: element.clientWidth, height: element.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, [img, loaded]);
  return shown;
}
