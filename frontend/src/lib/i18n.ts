// Every UI string comes from a locale catalogue. A key missing from the active catalogue is
// recorded (window.__servalMissingKeys) so the browser tests can fail on it; there is no
// silent fallback to English.
import i18next from "i18next";
import { initReactI18next } from "react-i18next";

// One catalogue file per feature and language (locales/<language>/<feature>.json), each with
// its own top-level keys, so features never edit each other's strings.
const files = import.meta.glob<Record<string, unknown>>("../locales/*/*.json", { eager: true, import: "default" });

function catalogue(language: string): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const [path, strings] of Object.entries(files)) {
    if (path.split("/")[2] === language) Object.assign(merged, strings);
  }
  return merged;
}

export const LANGUAGES = { en: "English", es: "Español" } as const;
export type Language = keyof typeof LANGUAGES;
const RTL = new Set(["ar", "he", "fa", "ur"]);
const STORAGE_KEY = "serval.language";

declare global {
  interface Window {
    __servalMissingKeys?: string[];
  }
}

function initialLanguage(): Language {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && saved in LANGUAGES) return saved as Language;
  const browser = navigator.language.slice(0, 2);
  return browser in LANGUAGES ? (browser as Language) : "en";
}

function applyToDocument(language: string): void {
  document.documentElement.lang = language;
  document.documentElement.dir = RTL.has(language) ? "rtl" : "ltr";
}

export function setupI18n() {
  window.__servalMissingKeys = [];
  const language = initialLanguage();
  void i18next.use(initReactI18next).init({
    resources: Object.fromEntries(Object.keys(LANGUAGES).map((l) => [l, { translation: catalogue(l) }])),
    lng: language,
    fallbackLng: false,
    interpolation: { escapeValue: false },
    returnNull: false,
    saveMissing: true,
    missingKeyHandler: (languages, _ns, key) => {
      window.__servalMissingKeys?.push(`${languages.join(",")}:${key}`);
    },
  });
  applyToDocument(language);
  i18next.on("languageChanged", (next) => {
    localStorage.setItem(STORAGE_KEY, next);
    applyToDocument(next);
  });
  return i18next;
}
