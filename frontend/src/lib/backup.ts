/** RPO and RTO as an operator reads them: seconds under two minutes, then minutes, then hours. */
export function duration(seconds: number | null | undefined, locale: string): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const format = (value: number, unit: "second" | "minute" | "hour") =>
    new Intl.NumberFormat(locale, { style: "unit", unit, maximumFractionDigits: 1 }).format(value);
  if (seconds < 120) return format(seconds, "second");
  if (seconds < 7200) return format(seconds / 60, "minute");
  return format(seconds / 3600, "hour");
}

/** A backup set as GET /api/v1/backup/sets/{id} answers it (the fields the console reads). */
export interface BackupSet {
  id: string;
  status: string;
  started_at: string;
  finished_at: string | null;
  error?: string;
  verify_ok?: boolean | null;
  /** queued → running → completed | verified | verify_failed | failed (newer servers). */
  state?: string;
  /** Nothing more will happen to the set on its own: stop polling (newer servers). */
  done?: boolean;
  /**
   * Dated more than 5 minutes ahead of the server's clock (a clock that ran ahead, a hand-made
   * row): listed first, yet never the latest set nor counted by retention (newer servers).
   */
  future_dated?: boolean;
}

/**
 * Whether the server flagged the set (or a row of the sets list) as dated in the future: it
 * sits at the top of the newest-first list while the status calls an older set the latest,
 * so the operator is shown why (and that its started_at needs fixing or the set deleting).
 */
export function futureDated(set: { future_dated?: unknown }): boolean {
  return set.future_dated === true;
}

/** Statuses of a set still being written or checked; any other status is where it ends. */
const PENDING = new Set(["queued", "pending", "running", "verifying"]);

/** The server's `done` when it says it; else judged by the status. */
export function settled(set: Pick<BackupSet, "status" | "state" | "done">): boolean {
  if (typeof set.done === "boolean") return set.done;
  return !PENDING.has(set.state ?? set.status);
}

export interface BackUpNowOptions {
  /** The session's fetch (bearer token, refresh on 401). */
  fetch: (request: Request) => Promise<Response>;
  origin: string;
  /** Every state of the set while it is pending, and the last one. */
  onProgress?: (set: BackupSet) => void;
  /** Turns an answer that is not 2xx into the error to throw. */
  problem: (response: Response) => Promise<Error>;
  sleep?: (ms: number) => Promise<void>;
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * POST /api/v1/backup/sets and the set it made, once settled. The server may answer 201 with
 * the written (or failed) set, or 202 with a set still queued or running: then the set (the
 * Location header, else its id) is polled until its status is no longer pending.
 */
export async function backUpNow(options: BackUpNowOptions): Promise<BackupSet> {
  const { fetch, origin, problem } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const response = await fetch(new Request(new URL("/api/v1/backup/sets", origin), { method: "POST" }));
  if (!response.ok) throw await problem(response);
  let set = (await response.json()) as BackupSet & { set_id?: string };
  options.onProgress?.(set);
  if (response.status !== 202 || settled(set)) return set;
  const location = response.headers.get("Location");
  const url = new URL(
    location?.includes("/backup/sets/") ? location : `/api/v1/backup/sets/${set.set_id ?? set.id}`,
    origin,
  );
  const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
  while (!settled(set)) {
    if (Date.now() > deadline) throw new Error(`the backup set is still ${set.status}`);
    await sleep(options.intervalMs ?? 1_000);
    const polled = await fetch(new Request(url));
    if (!polled.ok) throw await problem(polled);
    set = (await polled.json()) as BackupSet;
    options.onProgress?.(set);
  }
  return set;
}
