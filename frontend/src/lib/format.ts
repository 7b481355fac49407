// Dates, numbers and durations for the user's locale (Intl), never hand-formatted. Formatters
// are made once per locale and options (making one costs far more than using it: a list of
// rows formats thousands of values).
const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();

function numbers(locale: string, options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = `n|${locale}|${JSON.stringify(options)}`;
  let made = cache.get(key) as Intl.NumberFormat | undefined;
  if (!made) cache.set(key, (made = new Intl.NumberFormat(locale, options)));
  return made;
}

function dates(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `d|${locale}|${JSON.stringify(options)}`;
  let made = cache.get(key) as Intl.DateTimeFormat | undefined;
  if (!made) cache.set(key, (made = new Intl.DateTimeFormat(locale, options)));
  return made;
}

export function formatNumber(locale: string, value: number, digits = 0): string {
  return numbers(locale, { maximumFractionDigits: digits }).format(value);
}

export function formatPercent(locale: string, value: number): string {
  return numbers(locale, { style: "percent", maximumFractionDigits: 1 }).format(value);
}

export function formatDateTime(locale: string, iso: string): string {
  return dates(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function formatDay(locale: string, isoDay: string): string {
  return dates(locale, { month: "short", day: "numeric", timeZone: "UTC" }).format(new Date(`${isoDay}T00:00:00Z`));
}

export function formatBytes(locale: string, bytes: number): string {
  const units = ["byte", "kilobyte", "megabyte", "gigabyte"] as const;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return numbers(locale, { style: "unit", unit: units[unit], maximumFractionDigits: 1 }).format(value);
}

export function formatDuration(locale: string, seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const minutes = Math.floor(s / 60);
  const rest = s % 60;
  return `${numbers(locale, {}).format(minutes)}:${numbers(locale, { minimumIntegerDigits: 2 }).format(rest)}`;
}
