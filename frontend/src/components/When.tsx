// A time as the user's locale writes it, in a <time> element that carries the machine-readable value.
import { useTranslation } from "react-i18next";
import { formatDateTime } from "@/lib/format";

export function When({ iso }: { iso: string }) {
  const { i18n } = useTranslation();
  return <time dateTime={iso}>{formatDateTime(i18n.language, iso)}</time>;
}
