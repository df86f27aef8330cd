import type { StreamStatus } from "@/lib/stream";

/**
 * Why this exists: a browser keeps at most six HTTP/1.1 connections per host, and every open
 * EventSource holds one for good. One stream per channel of every enabled section (an admin
 * has six: deals, tasks, payments, documents, notifications, backup) left no connection for
 * anything else: navigation and every fetch queued forever. So the console streams only the
 * channels whose data is on screen: the channels that name a query with an observer (queries
 * are keyed by their channel, e.g. ["backup", "status"]), the bell's `notifications` included.
 * The same limit counts every tab of the browser: lib/tabs.ts shares one tab's streams with all.
 */

/** The first key element of every observed query that is a known channel, sorted and unique. */
export function observedChannels(
  queries: Iterable<{ queryKey: readonly unknown[]; getObserversCount(): number }>,
  known: ReadonlySet<string>,
): string[] {
  const seen = new Set<string>();
  for (const query of queries) {
    const head = query.queryKey[0];
    if (typeof head === "string" && known.has(head) && query.getObserversCount() > 0) seen.add(head);
  }
  return [...seen].sort();
}

export interface ChannelStream {
  start(): unknown;
  close(): void;
  /** Open again after a refusal a retry would meet every time (status "unavailable"). */
  resume?(): void;
}

export interface LiveChannelsOptions {
  /** A stream of one channel; it reports its status through `onStatus`. */
  open: (channel: string, onStatus: (status: StreamStatus) => void) => ChannelStream;
  /** The worst status of the open channels ("closed" when none is open). */
  onStatus: (status: StreamStatus) => void;
  /** A channel streamed before, closed, and now open again: its cached data may have missed events. */
  onResumed?: (channel: string) => void;
  /** How long a channel no longer on screen stays open (navigation unmounts, then mounts). */
  lingerMs?: number;
  schedule?: (run: () => void, ms: number) => unknown;
  cancel?: (handle: unknown) => void;
}

const RANK: Record<StreamStatus, number> = { closed: 0, live: 1, unavailable: 2, connecting: 3, reconnecting: 4 };

interface Entry {
  stream: ChannelStream;
  status: StreamStatus;
  closing: unknown;
  resumed: boolean;
}

/** The set of open channel streams: `want(channels)` opens the new ones, closes the gone ones after a linger. */
export class LiveChannels {
  private readonly entries = new Map<string, Entry>();
  private readonly streamedBefore = new Set<string>();

  constructor(private readonly options: LiveChannelsOptions) {}

  get open(): string[] {
    return [...this.entries.keys()].sort();
  }

  want(channels: readonly string[]): void {
    const wanted = new Set(channels);
    for (const channel of wanted) {
      const entry = this.entries.get(channel);
      if (entry) {
        if (entry.closing !== undefined) this.cancel(entry.closing);
        entry.closing = undefined;
        // refused for good (403, 404): a navigation asks again, once
        if (entry.status === "unavailable") entry.stream.resume?.();
        continue;
      }
      this.add(channel);
    }
    for (const [channel, entry] of this.entries) {
      if (wanted.has(channel) || entry.closing !== undefined) continue;
      entry.closing = this.schedule(() => this.remove(channel), this.options.lingerMs ?? 3_000);
    }
    this.report();
  }

  /** Open again every channel refused for good (403, 404): the session changed. */
  resumeUnavailable(): void {
    for (const entry of this.entries.values()) if (entry.status === "unavailable") entry.stream.resume?.();
  }

  closeAll(): void {
    for (const channel of [...this.entries.keys()]) this.remove(channel);
  }

  private add(channel: string): void {
    const resumed = this.streamedBefore.has(channel);
    this.streamedBefore.add(channel);
    const entry: Entry = { stream: { start: () => undefined, close: () => undefined }, status: "connecting", closing: undefined, resumed };
    entry.stream = this.options.open(channel, (status) => {
      if (status === "live" && entry.resumed) {
        entry.resumed = false;
        this.options.onResumed?.(channel);
      }
      entry.status = status;
      if (this.entries.get(channel) === entry) this.report();
    });
    this.entries.set(channel, entry);
    entry.stream.start();
  }

  private remove(channel: string): void {
    const entry = this.entries.get(channel);
    if (!entry) return;
    if (entry.closing !== undefined) this.cancel(entry.closing);
    this.entries.delete(channel);
    entry.stream.close();
    this.report();
  }

  private report(): void {
    let worst: StreamStatus = "closed";
    for (const entry of this.entries.values()) if (RANK[entry.status] > RANK[worst]) worst = entry.status;
    this.options.onStatus(worst);
  }

  private schedule(run: () => void, ms: number): unknown {
    return (this.options.schedule ?? ((r: () => void, t: number) => setTimeout(r, t)))(run, ms);
  }

  private cancel(handle: unknown): void {
    (this.options.cancel ?? ((h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>)))(handle);
  }
}
