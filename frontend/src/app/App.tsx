import { WebStorageStateStore } from "oidc-client-ts";
import { useMemo } from "react";
import { AuthProvider, type AuthProviderProps } from "react-oidc-context";
import { BrowserRouter } from "react-router";
import type { WebConfig } from "@/lib/config";
import { AppRoutes } from "./routes";
import { SignedIn } from "./SignedIn";

export interface ReturnState {
  returnTo?: string;
}

export function App({ config }: { config: WebConfig }) {
  const oidc = useMemo<AuthProviderProps>(() => {
    const origin = window.location.origin;
    return {
      authority: config.oidc.authority,
      metadataUrl: config.oidc.metadataUrl,
      client_id: config.oidc.clientId,
      redirect_uri: origin + config.oidc.redirectPath,
      post_logout_redirect_uri: origin + "/",
      response_type: "code",
      scope: config.oidc.scope,
      // refresh with the refresh token a minute before the ID token expires
      automaticSilentRenew: true,
      accessTokenExpiringNotificationTimeInSeconds: 60,
      loadUserInfo: false,
      userStore: new WebStorageStateStore({ store: window.sessionStorage }),
      onSigninCallback: (user) => {
        const state = (user?.state ?? {}) as ReturnState;
        const target = state.returnTo && state.returnTo.startsWith("/") ? state.returnTo : "/";
        window.history.replaceState({}, document.title, target);
        // tell the router the location changed (it listens to popstate)
        window.dispatchEvent(new PopStateEvent("popstate"));
      },
    };
  }, [config]);
  return (
    <AuthProvider {...oidc}>
      <BrowserRouter>
        <SignedIn config={config}>
          <AppRoutes />
        </SignedIn>
      </BrowserRouter>
    </AuthProvider>
  );
}
