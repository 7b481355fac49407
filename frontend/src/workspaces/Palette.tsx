// The class palette of a control: each class with its colour and hotkey; choosing one sets the
// class of the next region and relabels the selected one. Class names are the project's words,
// not the UI's (translate="no").
import type { ControlSpec } from "@/lib/api";
import { colorOf, hotkeysOf } from "./results";

export function Palette({ control, active, onPick }: { control: ControlSpec; active: string | undefined; onPick: (name: string) => void }) {
  return (
    <div className="palette" data-testid="palette">
      {[...hotkeysOf(control).entries()].map(([key, name]) => (
        <button key={name} type="button" className={name === active ? "chip chip-on" : "chip"} aria-pressed={name === active} onClick={() => onPick(name)} data-testid={`class-${name}`}>
          <span className="swatch" style={{ background: colorOf(control, name) }} />
          <span translate="no">{name}</span> <kbd translate="no">{key}</kbd>
        </button>
      ))}
    </div>
  );
}
