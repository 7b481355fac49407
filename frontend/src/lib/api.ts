// The API client, typed from docs/openapi.json (openapi-typescript), never written by hand.
// Every request carries the user's ID token; a 401 sends the user to login and back.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./api-schema";

export type Schemas = components["schemas"];
export type Task = Schemas["Task"];
export type TaskDetail = Schemas["TaskDetail"];
export type Project = Schemas["Project"];
export type LabelConfig = Schemas["LabelConfig"];
export type ControlSpec = Schemas["ControlSpec"];
export type Annotation = Schemas["Annotation"];
export type Result = Schemas["AnnotationCreate"]["results"][number];
export type Lease = Schemas["Lease"];
export type JobView = Schemas["JobView"];
export type TaskStatus = Schemas["TaskStatus"];
export type MediaType = Schemas["MediaType"];

/** One problem of a 422: where it is in the request (``["body", "results", 0, "boxes", 2]``), its
 * sentence, and for annotation results the control it concerns. */
export interface ErrorDetail {
  location?: (string | number)[];
  message?: string;
  type?: string;
  control?: string | null;
}

/** An API refusal: the status and the machine-readable error envelope. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetail[];

  constructor(status: number, code: string, message: string, details: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? (details as ErrorDetail[]) : [];
  }
}

export interface ApiHooks {
  token: () => string | undefined;
  onUnauthorized: () => void;
}

export function makeApi(baseUrl: string, hooks: ApiHooks) {
  const client = createClient<paths>({ baseUrl: baseUrl.replace(/\/$/, "") });
  const auth: Middleware = {
    onRequest({ request }) {
      const token = hooks.token();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401) hooks.onUnauthorized();
      return response;
    },
  };
  client.use(auth);
  return client;
}

export type Api = ReturnType<typeof makeApi>;

/** The data of an openapi-fetch answer, or an ApiError built from its envelope. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const body = (error ?? {}) as { error?: { code?: string; message?: string; details?: unknown } };
  throw new ApiError(
    response.status,
    body.error?.code ?? `http_${response.status}`,
    body.error?.message ?? response.statusText,
    body.error?.details,
  );
}
