import createClient from "openapi-fetch";
import type { paths } from "@/api/schema";
import { Session } from "@/lib/session";
import { authStore } from "@/store/auth";

/** The page's origin in the browser; a placeholder while Next.js prerenders the static pages. */
export const origin = typeof window !== "undefined" ? window.location.origin : "http://localhost";

export const session = new Session(authStore, origin);

/** Typed from crm2's /openapi.json: a changed endpoint fails `npm run typecheck`. */
export const api = createClient<paths>({ baseUrl: origin, fetch: session.fetch });

/** Untyped access to plugin endpoints known only at run time (console views). */
export async function getJson(path: string, query: Record<string, string> = {}): Promise<unknown> {
  const url = new URL(path, origin);
  for (const [key, value] of Object.entries(query)) if (value !== "") url.searchParams.set(key, value);
  const response = await session.fetch(new Request(url));
  if (!response.ok) throw await ProblemError.from(response);
  return response.json();
}

export async function sendJson(
  method: "POST" | "PATCH",
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const request = new Request(new URL(path, origin), {
    method,
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const response = await session.fetch(request);
  if (!response.ok) throw await ProblemError.from(response);
  return response;
}

export interface FieldError {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** An RFC 9457 problem+json answer, with the per-field errors of a 422. */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail || title);
  }

  static async from(response: Response): Promise<ProblemError> {
    let body: Record<string, unknown> = {};
    try {
      body = (await response.json()) as Record<string, unknown>;
    } catch {
      // not JSON: keep the status alone
    }
    return new ProblemError(
      response.status,
      String(body.title ?? response.statusText),
      String(body.detail ?? ""),
      Array.isArray(body.errors) ? (body.errors as FieldError[]) : [],
    );
  }

  /** `{field: message}` for the fields of a request body that the server refused. */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const error of this.errors) {
      const [where, field] = error.loc;
      if (where === "body" && typeof field === "string" && !(field in out)) out[field] = error.msg;
    }
    return out;
  }
}

/** Unwrap an openapi-fetch result or throw its problem. */
export async function ok<T>(result: { data?: T; error?: unknown; response: Response }): Promise<T> {
  if (result.data === undefined || !result.response.ok) {
    const error = result.error as Record<string, unknown> | undefined;
    throw new ProblemError(
      result.response.status,
      String(error?.title ?? result.response.statusText),
      String(error?.detail ?? ""),
      Array.isArray(error?.errors) ? (error.errors as FieldError[]) : [],
    );
  }
  return result.data;
}
