// Lists typed as text: "a, b ,,c" → ["a", "b", "c"] (tags, choices, keypoint names).
export function commaList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
