import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Link, NavLink, useParams } from "react-router";
import { LanguageSwitcher } from "@/components/LanguageSwitcher";
import { useSession } from "@/lib/session";

export function Layout({ children }: { children: ReactNode }) {
  const { t } = useTranslation();
  const session = useSession();
  return (
    <div className="shell">
      <header className="topbar">
        <Link to="/" className="brand">
          {t("app.name")}
        </Link>
        <nav aria-label={t("nav.main")}>
          <NavLink to="/" end>
            {t("nav.projects")}
          </NavLink>
          {session.canGlobally("user:manage") ? <NavLink to="/admin/users">{t("nav.admin")}</NavLink> : null}
        </nav>
        <div className="topbar-end">
          <LanguageSwitcher />
          <span className="who" data-testid="who" translate="no">
            {session.me.email ?? session.me.username} · {t(`roles.${session.me.role}`)}
          </span>
          <button type="button" className="link" onClick={session.signOut} data-testid="sign-out">
            {t("nav.signOut")}
          </button>
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}

const PROJECT_PAGES: { path: string; key: string; action: string }[] = [
  { path: "", key: "dashboard", action: "project:read" },
  { path: "tasks", key: "tasks", action: "task:read" },
  { path: "label", key: "label", action: "task:lease" },
  { path: "review", key: "review", action: "review:lease" },
  { path: "upload", key: "upload", action: "upload:create" },
  { path: "export", key: "export", action: "export:create" },
  { path: "settings", key: "settings", action: "project:update" },
];

export function ProjectNav() {
  const { t } = useTranslation();
  const { projectId = "" } = useParams();
  const session = useSession();
  return (
    <nav className="project-nav" aria-label={t("nav.project")}>
      {PROJECT_PAGES.filter((p) => session.can(projectId, p.action)).map((p) => (
        <NavLink key={p.key} to={`/projects/${encodeURIComponent(projectId)}/${p.path}`} end={p.path === ""} data-testid={`nav-${p.key}`}>
          {t(`nav.${p.key}`)}
        </NavLink>
      ))}
    </nav>
  );
}

export { PROJECT_PAGES };
