// A small SVG bar chart: one bar per point, labelled for screen readers by a table.
export interface Bar {
  label: string;
  value: number;
}

export function BarChart({ bars, title, format }: { bars: Bar[]; title: string; format: (v: number) => string }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = Math.max(1, bars.length) * 12;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} 100`} preserveAspectRatio="none" role="img" aria-label={title}>
        {bars.map((b, i) => {
          const h = (b.value / max) * 96;
          return (
            <rect key={b.label} x={i * 12 + 1} y={100 - h} width={10} height={h} className="chart-bar">
              <title>{`${b.label}: ${format(b.value)}`}</title>
            </rect>
          );
        })}
      </svg>
      <figcaption className="chart-axis">
        <span>{bars[0]?.label}</span>
        <span>{bars[bars.length - 1]?.label}</span>
      </figcaption>
    </figure>
  );
}
