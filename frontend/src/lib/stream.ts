/**
 * One crm2 SSE channel (docs/streams.md): read with `fetch` and the user's access token,
 * resumed from the last event id after any drop, and a status the UI shows.
 */
export type StreamStatus = "connecting" | "live" | "reconnecting" | "unavailable" | "closed";

export interface Envelope {
  id: string;
  type: string;
  version: number;
  occurred_at: string;
  subject: string;
  data: Record<string, unknown>;
  position: number;
}

/** One message of a `text/event-stream`, as an `EventSource` would deliver it. */
export interface SseMessage {
  /** the `event:` field; "message" when the message named none */
  event: string;
  /** the `data:` lines, joined with "\n" */
  data: string;
  /** the stream's last `id:` so far (it carries over to the messages without one) */
  lastEventId: string;
}

/**
 * The `text/event-stream` format (WHATWG HTML, "Server-sent events", interpreting an event
 * stream), read from decoded text in chunks of any size: a line, a CRLF or a message may be
 * split between two chunks. Lines end with CRLF, LF or CR; a line starting with `:` is a
 * comment (the server's heartbeats); `data:` lines add up; `id:` (unless it holds a NUL)
 * sets the last event id, which later messages keep; `retry:` takes ASCII digits only; one
 * space after the colon is no part of the value; unknown fields are ignored; a message is
 * dispatched at a blank line, and none without data. A byte order mark is the decoder's to
 * drop (`TextDecoder` does).
 */
export class SseParser {
  /** the current line's text from earlier chunks (never a line break) */
  private partial = "";
  /** the last chunk ended in CR: an LF opening the next one ends no other line */
  private afterCR = false;
  private data: string[] = [];
  private event = "";
  private idBuffer = "";
  /** the last event id dispatched (as `EventSource.lastEventId`) */
  lastEventId = "";
  /** the server's last `retry:` in milliseconds (null: none sent) */
  retry: number | null = null;

  constructor(private readonly onMessage: (message: SseMessage) => void) {}

  push(chunk: string): void {
    if (chunk === "") return;
    const text = this.afterCR && chunk.startsWith("\n") ? chunk.slice(1) : chunk;
    this.afterCR = false;
    const breaks = /\r\n|\r|\n/g;
    let from = 0;
    for (let found = breaks.exec(text); found !== null; found = breaks.exec(text)) {
      const line = this.partial + text.slice(from, found.index);
      this.partial = "";
      from = found.index + found[0].length;
      if (found[0] === "\r" && from === text.length) this.afterCR = true;
      this.line(line);
    }
    this.partial += text.slice(from);
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") {
      if (!value.includes("\0")) this.idBuffer = value;
    } else if (field === "retry" && /^[0-9]+$/.test(value)) this.retry = Number(value);
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const data = this.data;
    const event = this.event;
    this.data = [];
    this.event = "";
    if (data.length === 0) return;
    this.onMessage({ event: event || "message", data: data.join("\n"), lastEventId: this.lastEventId });
  }
}

/**
 * GET the stream: `fetch`, signed with the user's access token (`Authorization: Bearer`, and
 * refreshed on a 401). Never a token in the URL: URLs end up in access logs.
 */
export type StreamRequest = (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<Response>;

export interface StreamOptions {
  channel: string;
  /** The event types delivered to `onEvent` (those /asyncapi.json lists for the channel). */
  types: string[];
  onEvent: (event: Envelope) => void;
  onStatus?: (status: StreamStatus) => void;
  /** Every position the stream reaches (its `connected` and `reset` messages and each event's id). */
  onPosition?: (id: string) => void;
  /**
   * The server skipped the events since our last id (a resume from further back than it
   * replays, docs/streams.md), the id is one it never sent (the event log was restored
   * from a backup), or the reader lost access to the channel: the channel's data must be
   * read again over the REST API.
   */
  onReset?: () => void;
  /** Resume from here on the first connection (a tab taking over another tab's streams). */
  lastEventId?: string | null;
  request: StreamRequest;
  origin: string;
  schedule?: (run: () => void, ms: number) => unknown;
  random?: () => number;
  now?: () => number;
}

/** `Retry-After` in seconds (crm2 sends delta-seconds); null when absent or unreadable. */
function retryAfter(response: Response): number | null {
  const header = response.headers.get("Retry-After");
  const seconds = Number(header ?? "");
  return header !== null && header.trim() !== "" && Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

/** The `reconnect` reasons after which reconnecting is refused (docs/streams.md). */
const LOST_ACCESS = new Set(["forbidden", "credentials-revoked"]);

function reasonOf(data: string): string {
  try {
    const reason = (JSON.parse(data) as { reason?: unknown } | null)?.reason;
    return typeof reason === "string" ? reason : "";
  } catch {
    return "";
  }
}

const MAX_DELAY_MS = 30_000;
/**
 * The server's heartbeat interval until its `connected` message says (`heartbeat_seconds`):
 * the default of `CRM2_SSE_HEARTBEAT_SECONDS`.
 */
const DEFAULT_HEARTBEAT_SECONDS = 15;
/**
 * A connection that read nothing, heartbeats included, for this many heartbeat intervals is
 * dead without having been closed (the network gone silently: no reset, no error, no more
 * bytes), and the status would say "live" for ever: it is aborted and reconnected.
 */
const IDLE_HEARTBEATS = 2.5;
/**
 * The refusals a retry would meet every time: a 403 (the reader lacks the channel's
 * permission) or a 404 (no enabled plugin declares the channel). The stream stops, shows
 * "unavailable", and opens again on `resume()`: a navigation, or new session tokens.
 */
const GIVE_UP = new Set([403, 404]);

/** `heartbeat_seconds` of a `connected` message, when it is a positive number. */
function heartbeatOf(data: string): number | null {
  try {
    const seconds = (JSON.parse(data) as { heartbeat_seconds?: unknown } | null)?.heartbeat_seconds;
    return typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? seconds : null;
  } catch {
    return null;
  }
}
/** The longest wait a refusal's `Retry-After` gets (a wrong header must not stop live updates for long). */
const MAX_RETRY_AFTER_MS = 60_000;
/**
 * A connection that lived this long was healthy: the back-off starts afresh after it, and the
 * server's `reconnect` at its end is followed at once. A shorter one (the server refusing or
 * failing every stream just after opening it) keeps backing off, never a reconnect loop.
 */
const HEALTHY_MS = 10_000;

/**
 * The stream read with `fetch`, not `EventSource`: an `EventSource` cannot send headers (so
 * its credential went in the URL, where access logs keep it) and hides a refused stream's
 * status (so a 429 or 503 cost one more GET to learn when to come back).
 */
export class LiveStream {
  lastEventId: string | null = null;
  status: StreamStatus = "connecting";
  /** the current connection's (null: none open or opening) */
  private controller: AbortController | null = null;
  private delay = 1000;
  private stopped = false;
  /** when the current connection's answer came (null: not yet) */
  private openedAt: number | null = null;
  /** the server's heartbeat interval in seconds, as its last `connected` message said */
  private heartbeatSeconds = DEFAULT_HEARTBEAT_SECONDS;
  /** the current connection's idle watchdog */
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private watching: { controller: AbortController; reader: ReadableStreamDefaultReader<Uint8Array> } | null = null;

  constructor(private readonly options: StreamOptions) {
    this.lastEventId = options.lastEventId ?? null;
  }

  start(): this {
    void this.open();
    return this;
  }

  close(): void {
    this.stopped = true;
    const controller = this.controller;
    this.controller = null;
    this.unwatch();
    controller?.abort();
    this.setStatus("closed");
  }

  /**
   * Open again a stream stopped by a refusal that a retry would meet every time (a 403 or a
   * 404, status "unavailable"): the reader navigated, or their session changed. No-op otherwise.
   */
  resume(): void {
    if (this.stopped || this.status !== "unavailable" || this.controller !== null) return;
    this.delay = 1000;
    this.setStatus("connecting");
    void this.open();
  }

  /** The stream's URL: the channel alone (the credential and the resume position are headers). */
  url(): string {
    return new URL(`/api/v1/streams/${encodeURIComponent(this.options.channel)}`, this.options.origin).toString();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const controller = new AbortController();
    this.controller = controller;
    this.openedAt = null;
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let response: Response;
    try {
      response = await this.options.request(this.url(), { headers, signal: controller.signal });
    } catch {
      this.ended(controller, false); // the network (or our own abort, then a no-op)
      return;
    }
    const body = response.body;
    const type = response.headers.get("Content-Type") ?? "";
    if (this.controller !== controller || !response.ok || body === null || !type.startsWith("text/event-stream")) {
      void body?.cancel().catch(() => undefined);
      this.refused(controller, response);
      return;
    }
    this.openedAt = this.now();
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser((message) => this.dispatch(controller, message));
    this.watch(controller, reader);
    try {
      while (this.controller === controller) {
        const { done, value } = await reader.read();
        if (done) break;
        this.watch(controller, reader); // anything read, a heartbeat too, shows the connection alive
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // the network dropped the stream, or it was aborted (a reconnect message, a close)
    }
    void reader.cancel().catch(() => undefined);
    this.ended(controller, false);
  }

  /** (Re)arm the idle watchdog of `controller`'s connection: see IDLE_HEARTBEATS. */
  private watch(controller: AbortController, reader: ReadableStreamDefaultReader<Uint8Array>): void {
    this.unwatch();
    this.watching = { controller, reader };
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.controller !== controller) return;
      // a read that never returns ends here: the cancel settles it, the abort drops the request
      void reader.cancel().catch(() => undefined);
      this.ended(controller, false);
    }, this.heartbeatSeconds * IDLE_HEARTBEATS * 1000);
  }

  private unwatch(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.watching = null;
  }

  private dispatch(controller: AbortController, message: SseMessage): void {
    if (this.controller !== controller) return; // after this connection's `reconnect`
    const { event, lastEventId } = message;
    if (event === "connected") {
      const heartbeat = heartbeatOf(message.data);
      const watching = this.watching;
      if (heartbeat !== null && heartbeat !== this.heartbeatSeconds) {
        this.heartbeatSeconds = heartbeat;
        if (watching?.controller === controller) this.watch(controller, watching.reader);
      }
      this.lastEventId = lastEventId;
      this.options.onPosition?.(lastEventId);
      this.setStatus("live");
    } else if (event === "reset") {
      // sent right after `connected` instead of a too long replay: the stream goes on live from
      // the log's end, so whatever the screen shows may lack the events in between
      this.lastEventId = lastEventId;
      this.options.onPosition?.(lastEventId);
      this.options.onReset?.();
    } else if (event === "reconnect") {
      this.ended(controller, true);
      // the reader lost the channel's permission or their credentials: the screen's data is
      // read again, and its answer (a 403, or a 401 that signs out) shows now, not when the
      // data next goes stale; the streams back off meanwhile
      if (LOST_ACCESS.has(reasonOf(message.data))) this.options.onReset?.();
    } else if (this.options.types.includes(event)) {
      this.lastEventId = lastEventId;
      this.options.onPosition?.(lastEventId);
      try {
        this.options.onEvent(JSON.parse(message.data) as Envelope);
      } catch (error) {
        // a handler's bug shows as an uncaught error (as in an EventSource listener), and the
        // stream goes on: ending it would only replay the event into the same bug
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** The connection ended: reopen at once after a healthy one the server ended, else back off. */
  private ended(controller: AbortController, asked: boolean): void {
    if (this.controller !== controller) return;
    this.controller = null;
    this.unwatch();
    controller.abort();
    const healthy = this.openedAt !== null && this.now() - this.openedAt >= HEALTHY_MS;
    if (healthy) this.delay = 1000;
    this.retry(healthy && asked ? 0 : this.delay);
  }

  /**
   * A stream the server did not open. A 429 `too-many-streams` or a 503 `streams-full` (the
   * server at its stream limit) says when to come back, and every refused client retrying
   * after 1 s, 2 s … only loaded it further. A 400 refuses the resume position: an id this
   * server never sent (its event log was restored from a backup, or another server's),
   * which a retry with it would meet for ever; the stream starts afresh from the log's end
   * and the channel's data is read again. A 403 or a 404 stops the stream (GIVE_UP): retrying
   * it every 30 s while the channel is on screen met the same answer every time. Anything
   * else backs off as usual.
   */
  private refused(controller: AbortController, response: Response): void {
    if (this.controller !== controller) return;
    this.controller = null;
    controller.abort();
    const seconds = retryAfter(response);
    if ((response.status === 429 || response.status === 503) && seconds !== null) {
      const wait = Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
      // spread over half the wait again, so that the clients refused together do not all come back at once
      this.retry(wait, wait / 2);
      return;
    }
    if (GIVE_UP.has(response.status)) {
      this.setStatus("unavailable");
      return;
    }
    if (response.status === 400 && this.lastEventId !== null) {
      this.lastEventId = null;
      this.options.onReset?.();
    }
    this.retry(this.delay);
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
 * messages as `<type>.v<version>`): the stream delivers those, and ignores any other.
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
