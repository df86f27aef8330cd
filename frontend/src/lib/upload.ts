/**
 * A file upload that reports its progress: fetch() cannot tell how much of a request body
 * was sent, XMLHttpRequest's `upload.onprogress` can. Signed with the session's access
 * token; the answer's problem+json detail becomes the error's message.
 */

export interface UploadProgress {
  loaded: number;
  total: number;
}

/** The part of XMLHttpRequest an upload uses (a fake one in the tests). */
export interface XhrLike {
  upload: { onprogress: ((event: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  status: number;
  responseText: string;
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: FormData): void;
  abort(): void;
}

export interface UploadRequest {
  url: string;
  file: Blob;
  filename: string;
  token: string | null;
  headers?: Record<string, string>;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
  xhr?: () => XhrLike;
}

export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Percent (0–100, whole) of an upload, for a progress bar. */
export function percent(progress: UploadProgress | null): number {
  if (!progress || progress.total <= 0) return 0;
  return Math.min(100, Math.floor((progress.loaded / progress.total) * 100));
}

export function uploadWithProgress(request: UploadRequest): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = request.xhr ? request.xhr() : (new XMLHttpRequest() as unknown as XhrLike);
    xhr.open("POST", request.url);
    if (request.token) xhr.setRequestHeader("Authorization", `Bearer ${request.token}`);
    for (const [name, value] of Object.entries(request.headers ?? {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      const total = event.lengthComputable ? event.total : request.file.size;
      request.onProgress?.({ loaded: event.loaded, total });
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        request.onProgress?.({ loaded: request.file.size, total: request.file.size });
        resolve(body);
        return;
      }
      const problem = (body ?? {}) as Record<string, unknown>;
      reject(new UploadError(xhr.status, String(problem.detail || problem.title || `HTTP ${xhr.status}`)));
    };
    xhr.onerror = () => reject(new UploadError(0, "the upload was interrupted"));
    xhr.onabort = () => reject(new UploadError(0, "the upload was cancelled"));
    request.signal?.addEventListener("abort", () => xhr.abort());
    const form = new FormData();
    form.set("file", request.file, request.filename);
    xhr.send(form);
  });
}

/** The part of the session a signed upload needs (lib/session.ts). */
export interface UploadAuth {
  accessToken(validForMs?: number): Promise<string | null>;
  renewAccess(refused: string): Promise<string | null>;
}

/**
 * An upload starts with a token valid for at least this long: behind a proxy that buffers
 * request bodies (nginx does by default, infra/nginx) crm2 checks the token only once the
 * whole file has arrived, so a token that expires during the upload fails it at its end.
 */
export const UPLOAD_TOKEN_MARGIN_MS = 5 * 60_000;

/**
 * `uploadWithProgress` signed by the session: the token is refreshed first when it would expire
 * within UPLOAD_TOKEN_MARGIN_MS, and an upload the server refuses with a 401 (one that outlived
 * even that) is sent once more with a refreshed token — a Blob or File can be read again, and
 * the same Idempotency-Key still stands for it, since a 401 claims no key.
 */
export async function signedUpload(auth: UploadAuth, request: Omit<UploadRequest, "token">): Promise<unknown> {
  const token = await auth.accessToken(UPLOAD_TOKEN_MARGIN_MS);
  try {
    return await uploadWithProgress({ ...request, token });
  } catch (error) {
    if (!(error instanceof UploadError) || error.status !== 401 || !token || request.signal?.aborted) throw error;
    const fresh = await auth.renewAccess(token);
    if (!fresh) throw error;
    request.onProgress?.({ loaded: 0, total: request.file.size });
    return uploadWithProgress({ ...request, token: fresh });
  }
}
