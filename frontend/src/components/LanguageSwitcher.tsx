import { useTranslation } from "react-i18next";
import { LANGUAGES } from "@/lib/i18n";

export function LanguageSwitcher() {
  const { t, i18n } = useTranslation();
  return (
    <label className="language">
      <span className="visually-hidden">{t("nav.language")}</span>
      <select data-testid="language" value={i18n.language} onChange={(e) => void i18n.changeLanguage(e.target.value)}>
        {Object.keys(LANGUAGES).map((code) => (
          <option key={code} value={code} lang={code}>
            {t(`languageName.${code}`)}
          </option>
        ))}
      </select>
    </label>
  );
}
