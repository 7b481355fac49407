// The user directory (admins): search by e-mail prefix, a page at a time. Inviting, roles and
// disabling come with the admin pages of the next issue; the API already has them.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { ErrorMessage } from "@/components/ErrorMessage";
import { When } from "@/components/When";
import { Spinner } from "@/components/Spinner";
import { type Schemas, unwrap } from "@/lib/api";
import { useSession } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";

type User = Schemas["User"];

export default function UsersPage() {
  const { t } = useTranslation();
  const { api } = useSession();
  const [prefix, setPrefix] = useState("");
  const [search, setSearch] = useState("");
  const [more, setMore] = useState<{ users: User[]; cursor: string | null }>();
  const first = useAsync(() => {
    setMore(undefined);
    return unwrap(api.GET("/users", { params: { query: { limit: 100, email_prefix: search || undefined } } }));
  }, [search]);
  const users = more?.users ?? first.data?.items ?? [];
  const cursor = more ? more.cursor : (first.data?.next_cursor ?? null);
  const [error, setError] = useState<unknown>();
  const loadMore = () =>
    unwrap(api.GET("/users", { params: { query: { limit: 100, email_prefix: search || undefined, cursor: cursor ?? undefined } } })).then(
      (page) => setMore({ users: [...users, ...page.items], cursor: page.next_cursor ?? null }),
      setError,
    );
  return (
    <section data-testid="users-page">
      <h1>{t("users.title")}</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(prefix.trim());
        }}
      >
        <label>
          {t("users.search")}
          <input data-testid="users-search" value={prefix} maxLength={254} onChange={(e) => setPrefix(e.target.value)} />
        </label>
        <button type="submit">{t("users.find")}</button>
      </form>
      <ErrorMessage error={first.error ?? error} />
      {first.loading && users.length === 0 ? <Spinner label={t("common.loading")} /> : null}
      <table className="table" data-testid="users">
        <thead>
          <tr>
            <th>{t("users.email")}</th>
            <th>{t("users.role")}</th>
            <th>{t("users.status")}</th>
            <th>{t("users.created")}</th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.user_id} data-testid="user-row" data-user-id={u.user_id}>
              <td translate="no">{u.email}</td>
              <td>{u.groups.map((g) => t(`roles.${g}`, { defaultValue: g })).join(", ") || t("roles.none")}</td>
              <td>{u.enabled ? t("users.enabled") : t("users.disabled")}</td>
              <td><When iso={u.created_at} /></td>
            </tr>
          ))}
        </tbody>
      </table>
      {!first.loading && users.length === 0 ? <p className="muted">{t("users.none")}</p> : null}
      {cursor ? (
        <button type="button" onClick={() => void loadMore()}>
          {t("users.more")}
        </button>
      ) : null}
    </section>
  );
}
