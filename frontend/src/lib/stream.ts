/**
 * One crm2 SSE channel (docs/streams.md): a fresh stream token per connection,
 * resume from the last event id after any drop, and a status the UI shows.
 */
export type StreamStatus = "connecting" | "live" | "reconnecting" | "closed";

export interface Envelope {
  id: string;
  type: string;
  version: number;
  occurred_at: string;
  subject: string;
  data: Record<string, unknown>;
  position: number;
}

export interface EventSourceLike {
  onopen: ((this: EventSourceLike, ev: Event) => unknown) | null;
  onerror: ((this: EventSourceLike, ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (message: MessageEvent) => void): void;
  close(): void;
}

export interface StreamOptions {
  channel: string;
  /** Types to listen to (`onmessage` never fires for named SSE events). */
  types: string[];
  onEvent: (event: Envelope) => void;
  onStatus?: (status: StreamStatus) => void;
  /** Every position the stream reaches (its `connected` and `reset` messages and each event's id). */
  onPosition?: (id: string) => void;
  /**
   * The server skipped the events since our last id (a resume from further back than it
   * replays, docs/streams.md): the channel's data must be read again over the REST API.
   */
  onReset?: () => void;
  /** Resume from here on the first connection (a tab taking over another tab's streams). */
  lastEventId?: string | null;
  /** POST /api/v1/streams/token for this channel; resolves to the token. */
  streamToken: (channel: string) => Promise<string>;
  origin: string;
  openSource?: (url: string) => EventSourceLike;
  /**
   * Why a stream that failed before it opened was refused: EventSource hides the response, so
   * the URL is asked again with fetch (cut off at the headers). Null: no answer (the network).
   */
  refusal?: (url: string) => Promise<Refusal | null>;
  schedule?: (run: () => void, ms: number) => unknown;
  random?: () => number;
  now?: () => number;
}

/** A refused stream's answer: its status and `Retry-After` in seconds (null: none given). */
export interface Refusal {
  status: number;
  retryAfter: number | null;
}

/** The status and `Retry-After` of a GET of the stream URL; the body (a stream, when it opens) is never read. */
export async function askWhyRefused(url: string): Promise<Refusal | null> {
  const controller = new AbortController();
  try {
    const response = await fetch(url, {
      headers: { Accept: "text/event-stream" },
      cache: "no-store",
      signal: controller.signal,
    });
    const header = response.headers.get("Retry-After");
    const seconds = Number(header ?? "");
    return { status: response.status, retryAfter: header !== null && Number.isFinite(seconds) && seconds >= 0 ? seconds : null };
  } catch {
    return null;
  } finally {
    controller.abort();
  }
}

const MAX_DELAY_MS = 30_000;
/** The longest wait a refusal's `Retry-After` gets (a wrong header must not stop live updates for long). */
const MAX_RETRY_AFTER_MS = 60_000;
/**
 * A connection that lived this long was healthy: the back-off starts afresh after it, and the
 * server's `reconnect` at its end is followed at once. A shorter one (the server refusing or
 * failing every stream just after opening it) keeps backing off, never a reconnect loop.
 */
const HEALTHY_MS = 10_000;

export class LiveStream {
  lastEventId: string | null = null;
  status: StreamStatus = "connecting";
  private source: EventSourceLike | null = null;
  private delay = 1000;
  private stopped = false;
  /** when the current connection opened (null: not open yet) */
  private openedAt: number | null = null;
  /** the current connection's URL, and whether it said `connected` */
  private openedUrl = "";
  private connected = false;

  constructor(private readonly options: StreamOptions) {
    this.lastEventId = options.lastEventId ?? null;
  }

  start(): this {
    void this.open();
    return this;
  }

  close(): void {
    this.stopped = true;
    this.source?.close();
    this.source = null;
    this.setStatus("closed");
  }

  /** The URL of the next connection: the channel, the token, and where to resume. */
  url(token: string): string {
    const url = new URL(`/api/v1/streams/${this.options.channel}`, this.options.origin);
    url.searchParams.set("token", token);
    if (this.lastEventId !== null) url.searchParams.set("last_event_id", this.lastEventId);
    return url.toString();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    let token: string;
    try {
      token = await this.options.streamToken(this.options.channel);
    } catch {
      this.retry(this.delay);
      return;
    }
    if (this.stopped) return;
    const open = this.options.openSource ?? ((url: string) => new EventSource(url) as EventSourceLike);
    this.openedUrl = this.url(token);
    const source = open(this.openedUrl);
    this.source = source;
    this.openedAt = null;
    this.connected = false;
    source.onopen = () => {
      this.openedAt = this.now();
    };
    source.addEventListener("connected", (message) => {
      this.connected = true;
      this.lastEventId = message.lastEventId;
      this.options.onPosition?.(message.lastEventId);
      this.setStatus("live");
    });
    // sent right after `connected` instead of a too long replay: the stream goes on live from
    // the log's end, so whatever the screen shows may lack the events in between
    source.addEventListener("reset", (message) => {
      this.lastEventId = message.lastEventId;
      this.options.onPosition?.(message.lastEventId);
      this.options.onReset?.();
    });
    for (const type of this.options.types) {
      source.addEventListener(type, (message) => {
        this.lastEventId = message.lastEventId;
        this.options.onPosition?.(message.lastEventId);
        this.options.onEvent(JSON.parse(String(message.data)) as Envelope);
      });
    }
    source.addEventListener("reconnect", () => this.reopen(source, true));
    source.onerror = () => this.reopen(source, false);
  }

  /** The connection ended: reopen at once after a healthy one the server ended, else back off. */
  private reopen(source: EventSourceLike, asked: boolean): void {
    source.close();
    if (this.source !== source) return;
    this.source = null;
    const healthy = this.openedAt !== null && this.now() - this.openedAt >= HEALTHY_MS;
    if (healthy) this.delay = 1000;
    if (!asked && this.openedAt === null && !this.connected) {
      this.retryRefused(this.openedUrl);
      return;
    }
    this.retry(healthy && asked ? 0 : this.delay);
  }

  /**
   * A stream that never opened: a 429 `too-many-streams` or a 503 `streams-full` (the server
   * at its stream limit) says when to come back, and every refused client retrying after
   * 1 s, 2 s … only loaded it further; the others (or no answer) back off as usual.
   */
  private retryRefused(url: string): void {
    this.setStatus("reconnecting");
    void (this.options.refusal ?? askWhyRefused)(url).then((refusal) => {
      if (this.stopped) return;
      const busy = refusal !== null && (refusal.status === 429 || refusal.status === 503);
      if (busy && refusal.retryAfter !== null) {
        const wait = Math.min(refusal.retryAfter * 1000, MAX_RETRY_AFTER_MS);
        // spread over half the wait again, so that the clients refused together do not all come back at once
        this.retry(wait, wait / 2);
      } else this.retry(this.delay);
    });
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private retry(delay: number, spread = 500): void {
    if (this.stopped) return;
    this.setStatus("reconnecting");
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    const schedule = this.options.schedule ?? ((run, ms) => setTimeout(run, ms));
    const jitter = (this.options.random ?? Math.random)() * spread;
    schedule(() => void this.open(), delay + jitter);
  }

  private setStatus(status: StreamStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.options.onStatus?.(status);
  }
}

export interface AsyncApiDoc {
  channels?: Record<string, { messages?: Record<string, unknown> }>;
}

/**
 * The event types a channel carries, from /asyncapi.json (`stream.<channel>` lists its
 * messages as `<type>.v<version>`): EventSource only delivers named events it listens to.
 */
export function channelEventTypes(doc: AsyncApiDoc, channel: string): string[] {
  const messages = doc.channels?.[`stream.${channel}`]?.messages ?? {};
  return [...new Set(Object.keys(messages).map((name) => name.replace(/\.v\d+$/, "")))].sort();
}

/**
 * How /asyncapi.json is read: live updates cannot start without it, so a failed read is asked
 * again for as long as it fails, 1 s, 2 s, 4 s … apart, at most a minute (after the default
 * single retry the error was cached for good, and the page never went live until a reload).
 */
export function asyncApiQuery(read: () => Promise<AsyncApiDoc>) {
  return {
    queryKey: ["asyncapi"],
    queryFn: read,
    staleTime: Infinity,
    retry: asyncApiRetry,
    retryDelay: asyncApiRetryDelay,
  };
}

/**
 * Whether a failed read of /asyncapi.json is asked again: a 404 (the events doc is not served,
 * so there are no live updates), a 401 or a 403 answers the same every time, and asking for
 * ever only loaded the server; the network or a 5xx may pass, so those keep backing off.
 */
export function asyncApiRetry(_failures: number, error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return !(status === 404 || status === 401 || status === 403);
}

/** Milliseconds before the next read of /asyncapi.json after `failures` failed ones. */
export function asyncApiRetryDelay(failures: number): number {
  return Math.min(1000 * 2 ** failures, 60_000);
}
