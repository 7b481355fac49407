// Signs the user in (authorization code + PKCE), then loads who they are and what they may do.
import { type ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { useAuth } from "react-oidc-context";
import { Spinner } from "@/components/Spinner";
import { makeApi, unwrap } from "@/lib/api";
import type { WebConfig } from "@/lib/config";
import { buildPermissions, type Session, SessionContext } from "@/lib/session";
import { useAsync } from "@/lib/useAsync";
import type { ReturnState } from "./App";

function here(): string {
  return window.location.pathname + window.location.search + window.location.hash;
}

export function SignedIn({ config, children }: { config: WebConfig; children: ReactNode }) {
  const auth = useAuth();
  const { t } = useTranslation();
  const tokenRef = useRef<string | undefined>(undefined);
  tokenRef.current = auth.user?.id_token;
  const redirecting = useRef(false);

  const api = useMemo(
    () =>
      makeApi(config.apiUrl, {
        token: () => tokenRef.current,
        onUnauthorized: () => {
          if (redirecting.current) return;
          redirecting.current = true;
          // an expired or revoked token: log in again and come back to this page
          void auth.removeUser().then(() => auth.signinRedirect({ state: { returnTo: here() } satisfies ReturnState }));
        },
      }),
    [config.apiUrl],
  );

  const signedIn = auth.isAuthenticated && !!auth.user?.id_token;
  useEffect(() => {
    if (!auth.isLoading && !signedIn && !auth.activeNavigator && !auth.error && !window.location.pathname.startsWith(config.oidc.redirectPath)) {
      void auth.signinRedirect({ state: { returnTo: here() } satisfies ReturnState });
    }
  }, [auth, signedIn, config.oidc.redirectPath]);

  const profile = useAsync(async () => {
    if (!signedIn) return undefined;
    const [me, mine] = await Promise.all([
      unwrap(api.GET("/me")),
      unwrap(api.GET("/me/projects", { params: { query: { limit: 500 } } })),
    ]);
    return { me, memberships: mine.items };
  }, [signedIn, auth.user?.profile.sub]);

  // memberships read again after the user changes them (a project they created, for one)
  const [fresher, setFresher] = useState<Session["memberships"]>();
  const refreshMemberships = useCallback(async () => {
    const mine = await unwrap(api.GET("/me/projects", { params: { query: { limit: 500 } } }));
    setFresher(mine.items);
  }, [api]);

  const session = useMemo<Session | undefined>(() => {
    if (!profile.data) return undefined;
    const me = profile.data.me;
    const memberships = fresher ?? profile.data.memberships;
    const signOut = () => {
      const url = new URL(config.oidc.endSessionEndpoint);
      url.searchParams.set("client_id", config.oidc.clientId);
      url.searchParams.set("logout_uri", window.location.origin + "/");
      void auth.removeUser().then(() => window.location.assign(url.toString()));
    };
    return { config, api, me, memberships, signOut, refreshMemberships, ...buildPermissions(me, memberships) };
  }, [profile.data, fresher, refreshMemberships, config, api, auth]);

  if (auth.error) {
    return (
      <main className="centered" role="alert">
        <h1>{t("auth.failed")}</h1>
        <p>{auth.error.message}</p>
        <button type="button" onClick={() => void auth.signinRedirect({ state: { returnTo: "/" } })}>
          {t("auth.tryAgain")}
        </button>
      </main>
    );
  }
  if (profile.error) {
    return (
      <main className="centered" role="alert">
        <h1>{t("auth.failed")}</h1>
        <button type="button" onClick={profile.reload}>{t("common.retry")}</button>
      </main>
    );
  }
  if (!session) return <Spinner label={t("auth.signingIn")} />;
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
