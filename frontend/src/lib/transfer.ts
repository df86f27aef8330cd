/**
 * CSV import and export over crm2's REST API, signed by the session's fetch.
 *
 * An import answers its per-row report at once (200), or, for a file the server
 * chooses to run in the background, 202 with a status resource (its `Location`
 * header, or `status_url` in the body) that is polled until the job is finished.
 * A file with row errors (and no `partial`) is refused: a 422 `import-refused`, or a
 * job ending `refused` with that problem; either way the caller gets its report.
 */
import { filenameFrom } from "@/lib/csv";

export type Fetcher = (request: Request) => Promise<Response>;

export interface ImportRowError {
  row: number;
  reason: string;
}

export interface ImportReport {
  created: number;
  updated: number;
  skipped: number;
  errors: ImportRowError[];
  /** Rows refused in all; a background job lists only the first ones in `errors`. */
  error_count: number;
  dry_run: boolean;
  applied: boolean;
  /** Header columns the import does not know: their cells were not read (a misspelt name). */
  ignored_columns: string[];
}

/** Where a background import is: its phase and the rows handled of the file's total. */
export interface ImportProgress {
  phase: string;
  processed: number;
  total: number;
}

export interface ImportOptions {
  dryRun: boolean;
  partial: boolean;
}

/** A refused request: the problem+json title and detail (or the status text). */
export class TransferError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  static async from(response: Response): Promise<TransferError> {
    let body: Record<string, unknown> = {};
    try {
      body = (await response.json()) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    const text = String(body.detail || body.title || response.statusText || response.status);
    return new TransferError(response.status, text);
  }
}

const DONE = new Set(["done", "succeeded", "success", "finished", "completed"]);
const FAILED = new Set(["failed", "error"]);
/** Rows have errors and `partial` was off: nothing was written; `problem` is the 422's body. */
const REFUSED = "refused";

function reportOf(body: Record<string, unknown>): ImportReport | null {
  const candidate = (body.report ?? body.result ?? body) as Partial<ImportReport> | null;
  if (!candidate || typeof candidate !== "object" || !Array.isArray(candidate.errors)) return null;
  return {
    created: Number(candidate.created ?? 0),
    updated: Number(candidate.updated ?? 0),
    skipped: Number(candidate.skipped ?? 0),
    errors: candidate.errors,
    error_count: Number(candidate.error_count ?? candidate.errors.length),
    dry_run: Boolean(candidate.dry_run),
    applied: Boolean(candidate.applied),
    ignored_columns: Array.isArray(candidate.ignored_columns) ? candidate.ignored_columns.map(String) : [],
  };
}

export interface Transfer {
  fetch: Fetcher;
  baseUrl: string;
  /** Pause between two polls of a background import's status. */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Told at every poll of a background import. */
  onProgress?: (progress: ImportProgress) => void;
}

/** Upload a CSV to an import endpoint; the server's report, waiting for a background job. */
export async function uploadImport(
  transfer: Transfer,
  path: string,
  file: Blob,
  options: ImportOptions,
): Promise<ImportReport> {
  const url = new URL(path, transfer.baseUrl);
  url.searchParams.set("dry_run", String(options.dryRun));
  url.searchParams.set("partial", String(options.partial));
  const form = new FormData();
  form.set("file", file, "import.csv");
  const response = await transfer.fetch(new Request(url, { method: "POST", body: form }));
  if (response.status === 202) return waitForJob(transfer, response);
  if (response.status === 422) {
    // import-refused: rows have errors and nothing was written; the problem carries the report
    const problem = (await response.clone().json().catch(() => ({}))) as Record<string, unknown>;
    const refused = problem.report ? reportOf(problem) : null;
    if (refused) return refused;
  }
  if (!response.ok) throw await TransferError.from(response);
  const report = reportOf((await response.json()) as Record<string, unknown>);
  if (!report) throw new TransferError(response.status, "the server's answer holds no import report");
  return report;
}

async function waitForJob(transfer: Transfer, accepted: Response): Promise<ImportReport> {
  const body = (await accepted.json().catch(() => ({}))) as Record<string, unknown>;
  const where = accepted.headers.get("Location") ?? (body.status_url as string | undefined) ?? "";
  if (!where) throw new TransferError(202, "the import was accepted but its status cannot be followed");
  const sleep = transfer.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let pause = transfer.pollMs ?? 1000;
  for (;;) {
    await sleep(pause);
    const response = await transfer.fetch(new Request(new URL(where, transfer.baseUrl)));
    // Retry-After (seconds) paces the next poll when the server gives it
    const after = Number(response.headers.get("Retry-After"));
    if (after > 0 && after <= 30) pause = after * 1000;
    if (!response.ok) throw await TransferError.from(response);
    const status = (await response.json()) as Record<string, unknown>;
    const state = String(status.status ?? status.state ?? "").toLowerCase();
    if (FAILED.has(state)) {
      throw new TransferError(200, String(status.detail || status.error || "the import failed"));
    }
    if (state === REFUSED) {
      // the import-refused problem, as a small file gets it in a 422: its report has the errors
      const problem = (status.problem ?? {}) as Record<string, unknown>;
      const refused = reportOf({ report: { ...(problem.report as object), error_count: status.error_count } });
      if (refused) return { ...refused, applied: false };
      throw new TransferError(422, String(problem.detail || "the import was refused"));
    }
    if (!DONE.has(state)) {
      transfer.onProgress?.({
        phase: String(status.phase ?? state),
        processed: Number(status.processed ?? 0),
        total: Number(status.total ?? 0),
      });
      continue;
    }
    const report = reportOf(status);
    if (report) return report;
    throw new TransferError(200, "the finished import holds no report");
  }
}

/** Fetch a CSV export (signed) and hand it to the browser as a download; its file name. */
export async function downloadCsv(
  transfer: Transfer,
  path: string,
  query: Record<string, string>,
  fallbackName: string,
): Promise<{ name: string; blob: Blob }> {
  const url = new URL(path, transfer.baseUrl);
  for (const [key, value] of Object.entries(query)) if (value !== "") url.searchParams.set(key, value);
  const response = await transfer.fetch(new Request(url));
  if (!response.ok) throw await TransferError.from(response);
  const name = filenameFrom(response.headers.get("Content-Disposition"), fallbackName);
  return { name, blob: await response.blob() };
}

/** Save a blob under a name through a temporary object URL (same origin, no navigation). */
export function saveBlob(name: string, blob: Blob): void {
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  link.rel = "noopener";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
