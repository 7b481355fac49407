import { lazy, type ReactNode, Suspense } from "react";
import { useTranslation } from "react-i18next";
import { Route, Routes, useParams } from "react-router";
import { NotAllowed, NotFound } from "@/components/NotAllowed";
import { Spinner } from "@/components/Spinner";
import { useSession } from "@/lib/session";
import { Layout, ProjectNav } from "./Layout";
import { ProjectsPage } from "@/features/projects/ProjectsPage";

// Every page but the projects list loads on demand, so the shell stays small.
const DashboardPage = lazy(() => import("@/features/dashboard/DashboardPage"));
const ProjectFormPage = lazy(() => import("@/features/projects/ProjectFormPage"));
const TaskListPage = lazy(() => import("@/features/tasks/TaskListPage"));
const TaskDetailPage = lazy(() => import("@/features/tasks/TaskDetailPage"));
const LabelingPage = lazy(() => import("@/features/labeling/LabelingPage"));
const ReviewPage = lazy(() => import("@/features/review/ReviewPage"));
const UploadPage = lazy(() => import("@/features/uploads/UploadPage"));
const ExportPage = lazy(() => import("@/features/exports/ExportPage"));
const UsersPage = lazy(() => import("@/features/admin/UsersPage"));

function Loading() {
  const { t } = useTranslation();
  return <Spinner label={t("common.loading")} />;
}

/** A project page the caller may open, or the "not allowed" page (typing its URL too). */
function InProject({ action, children }: { action: string; children: ReactNode }) {
  const { projectId = "" } = useParams();
  const session = useSession();
  if (!session.can(projectId, action)) return <NotAllowed />;
  return (
    <>
      <ProjectNav />
      <Suspense fallback={<Loading />}>{children}</Suspense>
    </>
  );
}

function Global({ action, children }: { action: string; children: ReactNode }) {
  const session = useSession();
  if (!session.canGlobally(action)) return <NotAllowed />;
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

export function AppRoutes() {
  return (
    <Layout>
      <Routes>
        <Route path="/" element={<ProjectsPage />} />
        <Route path="/auth/callback" element={<Loading />} />
        <Route path="/projects/new" element={<Global action="project:create"><ProjectFormPage /></Global>} />
        <Route path="/projects/:projectId" element={<InProject action="project:read"><DashboardPage /></InProject>} />
        <Route path="/projects/:projectId/settings" element={<InProject action="project:update"><ProjectFormPage /></InProject>} />
        <Route path="/projects/:projectId/tasks" element={<InProject action="task:read"><TaskListPage /></InProject>} />
        <Route path="/projects/:projectId/tasks/:taskId" element={<InProject action="task:read"><TaskDetailPage /></InProject>} />
        <Route path="/projects/:projectId/label" element={<InProject action="task:lease"><LabelingPage /></InProject>} />
        <Route path="/projects/:projectId/review" element={<InProject action="review:lease"><ReviewPage /></InProject>} />
        <Route path="/projects/:projectId/upload" element={<InProject action="upload:create"><UploadPage /></InProject>} />
        <Route path="/projects/:projectId/export" element={<InProject action="export:create"><ExportPage /></InProject>} />
        <Route path="/admin/users" element={<Global action="user:manage"><UsersPage /></Global>} />
        <Route path="*" element={<NotFound />} />
      </Routes>
    </Layout>
  );
}
