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
