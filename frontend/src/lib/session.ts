// Who is signed in, what they may do, and the API client that acts as them. The API stays the
// authority: the UI hides what a user may not do, and the API refuses it anyway.
import { createContext, useContext } from "react";
import type { Api, Schemas } from "./api";
import type { WebConfig } from "./config";

export type Me = Schemas["Me"];
export type MyProject = Schemas["MyProject"];

export interface Session {
  config: WebConfig;
  api: Api;
  me: Me;
  memberships: MyProject[];
  isAdmin: boolean;
  /** May the caller do ``action`` in the project? (admins may do everything everywhere) */
  can: (projectId: string, action: string) => boolean;
  /** May the caller do a global ``action`` (project:create, user:manage, ...)? */
  canGlobally: (action: string) => boolean;
  signOut: () => void;
  /** Read the caller's memberships again (after creating a project, say). */
  refreshMemberships: () => Promise<void>;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}

export function buildPermissions(me: Me, memberships: MyProject[]) {
  const isAdmin = me.role === "admin";
  const byProject = new Map(memberships.map((m) => [m.project_id, new Set(m.actions)]));
  const global = new Set(me.actions);
  return {
    isAdmin,
    can: (projectId: string, action: string) => isAdmin || (byProject.get(projectId)?.has(action) ?? false),
    canGlobally: (action: string) => isAdmin || global.has(action),
  };
}
