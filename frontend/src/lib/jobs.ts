/** A body the server answers for a background job: `done` when it says so, else judged by `status`. */
export interface JobBody {
  id?: string;
  status?: string;
  done?: boolean;
  error?: string;
}

const PENDING = new Set(["queued", "pending", "running", "verifying"]);

/** Whether nothing more will happen to the job on its own (stop polling). */
export function jobDone(body: JobBody): boolean {
  if (typeof body.done === "boolean") return body.done;
  return !PENDING.has(body.status ?? "");
}

export interface SettleOptions {
  /** The session's fetch (bearer token, refresh on 401). */
  fetch: (request: Request) => Promise<Response>;
  origin: string;
  /** Turns an answer that is not 2xx into the error to throw. */
  problem: (response: Response) => Promise<Error>;
  onProgress?: (body: JobBody) => void;
  sleep?: (ms: number) => Promise<void>;
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * A POST's answer, followed to the end: a `202 Accepted` with a `Location` (a backup set, a
 * restore drill's run …) is polled there until the job is done; any other answer is taken as
 * it is. Returns the last body (`null` when the answer had none).
 */
export async function settleAccepted(response: Response, options: SettleOptions): Promise<JobBody | null> {
  const { fetch, origin, problem } = options;
  if (!response.ok) throw await problem(response);
  const text = await response.text();
  let body = (text ? JSON.parse(text) : null) as JobBody | null;
  if (body) options.onProgress?.(body);
  const location = response.headers.get("Location");
  if (response.status !== 202 || !location || !body || jobDone(body)) return body;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const url = new URL(location, origin);
  const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
  while (!jobDone(body)) {
    if (Date.now() > deadline) throw new Error(`the job is still ${body.status ?? "pending"}`);
    await sleep(options.intervalMs ?? 1_000);
    const polled = await fetch(new Request(url));
    if (!polled.ok) throw await problem(polled);
    body = (await polled.json()) as JobBody;
    options.onProgress?.(body);
  }
  return body;
}
