export function ProgressBar({ value, max, label }: { value: number; max: number; label: string }) {
  const safeMax = Math.max(1, max);
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={safeMax} aria-valuenow={Math.min(value, safeMax)}>
      <div className="progress-fill" style={{ inlineSize: `${Math.min(100, (100 * value) / safeMax)}%` }} />
    </div>
  );
}
