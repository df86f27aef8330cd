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
    /** seconds, from a 429's or 503's `Retry-After` (null: none given) */
    readonly retryAfter: number | null = null,
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
      retryAfterSeconds(response),
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
      retryAfterSeconds(result.response),
    );
  }
  return result.data;
}

/** `Retry-After` in seconds (crm2 sends delta-seconds); null when absent or unreadable. */
export function retryAfterSeconds(response: Response): number | null {
  const value = Number(response.headers.get("Retry-After") ?? "");
  return response.headers.has("Retry-After") && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * What `fetch` rejects with when the request never got an answer (the network, DNS, CORS, a
 * reset connection), as each engine words it; a `TypeError` of the console's own code
 * ("Cannot read properties of undefined") is no such error.
 */
const NETWORK_MESSAGES = new Set([
  "Failed to fetch", // Chromium
  "NetworkError when attempting to fetch resource.", // Firefox
  "Load failed", // WebKit
  "fetch failed", // Node.js (undici)
  "Network request failed",
]);

/** Whether `error` is a request that got no answer (so a new one may get one). */
export function isNetworkError(error: unknown): boolean {
  return error instanceof TypeError && NETWORK_MESSAGES.has(error.message);
}

/** Retries of a failed query: one for a network error or a 5xx; a 429 (or a 503 that says when)
 * waits its Retry-After, up to twice; no other 4xx is retried: it answers the same again. Nor
 * is an error of the console itself (a view it cannot show, a body it cannot read): computed
 * again, the same, it only showed a second later. */
export function shouldRetry(failures: number, error: unknown): boolean {
  if (!(error instanceof ProblemError)) return isNetworkError(error) && failures < 1;
  if (error.status === 429 || (error.status === 503 && error.retryAfter !== null)) return failures < 2;
  return error.status >= 500 && failures < 1;
}

/**
 * Whether asking again may get another answer: the network, a 5xx, a 408 or a 429 may pass;
 * any other 4xx (a record not found, a malformed id, a permission missing) will not.
 */
export function mayPassLater(error: unknown): boolean {
  if (!(error instanceof ProblemError)) return true;
  return error.status >= 500 || error.status === 408 || error.status === 429;
}

/** How long before the next retry: the server's Retry-After when it gave one, else 1 s, 2 s … */
export function retryDelay(failures: number, error: unknown): number {
  if (error instanceof ProblemError && error.retryAfter !== null) return Math.min(error.retryAfter, 60) * 1000;
  return Math.min(1000 * 2 ** failures, 30_000);
}
