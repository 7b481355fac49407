// The runtime configuration (/config.json): one build serves every environment. CDK writes it
// into the site bucket; the local gateway serves it for make dev.
export interface WebConfig {
  environment: string;
  apiUrl: string;
  region: string;
  oidc: {
    authority: string;
    metadataUrl: string;
    clientId: string;
    scope: string;
    redirectPath: string;
    endSessionEndpoint: string;
  };
}

export async function loadConfig(): Promise<WebConfig> {
  const response = await fetch("/config.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  return (await response.json()) as WebConfig;
}
