import { useTranslation } from "react-i18next";
import { ApiError } from "@/lib/api";

/** An API refusal as the user reads it: its code's sentence, the API's details below. */
export function ErrorMessage({ error }: { error: unknown }) {
  const { t } = useTranslation();
  if (!error) return null;
  const api = error instanceof ApiError ? error : undefined;
  const code = api?.code ?? "network";
  const sentence = t(`errors.${code}`, { defaultValue: "" }) || t("errors.generic", { status: api?.status ?? 0 });
  return (
    <div className="error" role="alert" data-error-code={code}>
      <p>{sentence}</p>
      {api && api.message ? <p className="error-detail">{api.message}</p> : null}
      {api && api.details.length > 0 ? (
        <ul>
          {api.details.map((d, i) => (
            <li key={i}>
              {(d.location ?? []).filter((p) => p !== "body").join(" › ")}: {d.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
