import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "@/app/App";
import { loadConfig } from "@/lib/config";
import { setupI18n } from "@/lib/i18n";
import "@/styles.css";

setupI18n();
const root = createRoot(document.getElementById("root")!);
loadConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    ),
  (error: unknown) => root.render(<pre role="alert">{String(error)}</pre>),
);
