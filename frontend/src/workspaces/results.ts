// Editing results (API units) without knowing the media: one result per control.
import type { ControlSpec, Result } from "./types";

export function resultOf<T extends Result["type"]>(results: Result[], control: ControlSpec, type: T): Extract<Result, { type?: T }> | undefined {
  return results.find((r) => r.control === control.name && (r.type ?? control.type) === type) as Extract<Result, { type?: T }> | undefined;
}

export function replaceResult(results: Result[], next: Result): Result[] {
  const others = results.filter((r) => r.control !== next.control);
  return [...others, next];
}

/** Default hotkeys 1..9 for classes without one, per control. */
export function hotkeysOf(control: ControlSpec): Map<string, string> {
  const keys = new Map<string, string>();
  (control.classes ?? []).forEach((c, i) => {
    const key = c.hotkey ?? (i < 9 ? String(i + 1) : undefined);
    if (key) keys.set(key.toLowerCase(), c.name);
  });
  return keys;
}

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#808000"];

export function colorOf(control: ControlSpec, label: string): string {
  const classes = control.classes ?? [];
  const index = classes.findIndex((c) => c.name === label);
  return classes[index]?.color ?? PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

/** Does the target of a key event take text input (so hotkeys must not fire)? */
export function typingInto(event: KeyboardEvent): boolean {
  const target = event.target as HTMLElement | null;
  return !!target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}
