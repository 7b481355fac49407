import { useTranslation } from "react-i18next";
import { Link } from "react-router";

export function NotAllowed() {
  const { t } = useTranslation();
  return (
    <section className="not-allowed" data-testid="not-allowed">
      <h1>{t("notAllowed.title")}</h1>
      <p>{t("notAllowed.body")}</p>
      <Link to="/">{t("notAllowed.back")}</Link>
    </section>
  );
}

export function NotFound() {
  const { t } = useTranslation();
  return (
    <section className="not-allowed" data-testid="not-found">
      <h1>{t("notFound.title")}</h1>
      <Link to="/">{t("notAllowed.back")}</Link>
    </section>
  );
}
