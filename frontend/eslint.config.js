// Code flows one way: shared (components, lib, workspaces) -> features -> app. Features never
// import each other, and shared code never imports a feature or the app.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const features = ["admin", "projects", "dashboard", "tasks", "labeling", "review", "uploads", "exports"];

export default tseslint.config(
  { ignores: ["dist", "src/lib/api-schema.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["src/{components,lib,workspaces,locales}/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: ["@/features/*", "@/app/*"], message: "shared code may not import features or the app" }] }],
    },
  },
  ...features.map((feature) => ({
    files: [`src/features/${feature}/**/*.{ts,tsx}`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["@/app/*"], message: "features may not import the app" },
            { group: features.filter((f) => f !== feature).map((f) => `@/features/${f}/*`), message: "features do not import each other" },
          ],
        },
      ],
    },
  })),
);
