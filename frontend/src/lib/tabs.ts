import { LiveChannels, type ChannelStream } from "@/lib/channels";
import type { Envelope, StreamStatus } from "@/lib/stream";

/**
 * Why this exists: over HTTP/1.1 a browser keeps at most six connections per host *for all
 * its tabs together*, and every open EventSource holds one for good. Three tabs of the
 * console, each streaming `deals` and `notifications`, held all six: every REST call of
 * every tab then queued forever.
 *
 * So one tab of the origin, the leader, holds the SSE connections for every tab and relays
 * what they carry over a BroadcastChannel:
 *
 * - Election: each tab asks for the Web Lock `crm2.streams.leader`; the one holding it leads
 *   until its page goes away (the browser releases a closed or crashed tab's locks), then the
 *   next tab in the queue takes over, announces itself, and the others tell it what they want.
 * - Each tab subscribes only to the channels it shows (`want`); the leader opens their union.
 *   A tab that closes says `bye`; one that crashes is noticed through its own lock
 *   (`crm2.streams.tab.<id>`, held for its lifetime), which the leader waits for.
 * - Hand-over without a gap: every tab remembers the last position of each open channel (the
 *   relayed events carry it), and a new leader resumes each channel from the furthest position
 *   any tab knows (`last_event_id`): the server replays what fell in between.
 * - Every tab belongs to the same signed-in user (the tokens live in the origin's shared
 *   storage), so relaying events between them shows nobody anything new. While signed out the
 *   leader holds no stream at all.
 *
 * Without Web Locks or BroadcastChannel (old browsers, plain HTTP on a host other than
 * localhost: Web Locks needs a secure context) every tab leads alone, as before.
 */

export interface BusLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}

export interface LocksLike {
  request(name: string, callback: () => Promise<unknown>): Promise<unknown>;
}

export interface RealStreamHandlers {
  onEvent: (event: Envelope) => void;
  onStatus: (status: StreamStatus) => void;
  onPosition: (id: string) => void;
  onReset: () => void;
}

export interface SharedStreamsOptions {
  /** This tab's id, unique among the origin's tabs. */
  tab: string;
  /** A BroadcastChannel shared by the origin's tabs; null: this tab leads alone. */
  bus: BusLike | null;
  /** navigator.locks; null: this tab leads alone. */
  locks: LocksLike | null;
  /** A real SSE stream of `channel` (the leader's), resuming after `lastEventId` when given. */
  openStream: (channel: string, lastEventId: string | null, handlers: RealStreamHandlers) => ChannelStream;
  /** How long the leader keeps a channel no tab wants any more open. */
  lingerMs?: number;
  schedule?: (run: () => void, ms: number) => unknown;
  cancel?: (handle: unknown) => void;
}

export interface Subscriber {
  onEvent: (event: Envelope) => void;
  onStatus: (status: StreamStatus) => void;
  /** The channel's stream skipped events (a `reset`): its data must be read again. */
  onReset?: () => void;
}

/** What tabs say to each other on the bus. */
export type TabMessage =
  | { kind: "want"; tab: string; channels: string[]; positions: Record<string, string> }
  | { kind: "bye"; tab: string }
  | { kind: "leader"; tab: string }
  | { kind: "event"; channel: string; position: string; event: Envelope }
  | { kind: "reset"; channel: string; position: string }
  | { kind: "status"; statuses: Record<string, StreamStatus>; positions: Record<string, string> };

const LEADER_LOCK = "crm2.streams.leader";
const tabLock = (tab: string) => `crm2.streams.tab.${tab}`;

/** Later position wins; positions are decimal log positions (compared as numbers). */
function later(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Number(b) > Number(a) ? b : a;
}

/** One per page: the tab's side of the shared streams, and the leader's side while it leads. */
export class SharedStreams {
  /** this tab's subscribers per channel */
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  /** the leader's statuses of its open channels, as last heard */
  private statuses: Record<string, StreamStatus> = {};
  /** the last position of each open channel, as last heard (for a hand-over) */
  private positions: Record<string, string> = {};
  private leading = false;
  private signedIn = true;
  private started = false;
  private generation = 0;
  private release: (() => void) | null = null;
  // the leader's side
  private readonly wants = new Map<string, Set<string>>();
  private readonly watched = new Set<string>();
  private channels: LiveChannels | null = null;

  constructor(private readonly options: SharedStreamsOptions) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** The channels the leader holds open (empty in a follower). */
  get open(): string[] {
    return this.channels?.open ?? [];
  }

  /** Join the origin's tabs: hold this tab's own lock, then queue for the leadership. */
  start(): this {
    if (this.started) return this;
    this.started = true;
    const { bus, locks } = this.options;
    if (!bus || !locks) {
      this.lead();
      return this;
    }
    bus.onmessage = (message) => this.receive(message.data as TabMessage);
    const generation = ++this.generation;
    const held = new Promise<void>((resolve) => {
      this.release = resolve;
    });
    let registered: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      registered = resolve;
    });
    void locks.request(tabLock(this.options.tab), () => {
      registered();
      return held;
    });
    void ready.then(() => {
      this.announce();
      void locks.request(LEADER_LOCK, () => {
        if (generation !== this.generation || !this.started) return Promise.resolve(); // stopped meanwhile
        this.lead();
        return held;
      });
    });
    return this;
  }

  /** The page is going away: hand the streams over now rather than when the browser notices. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.generation++;
    this.channels?.closeAll();
    this.channels = null;
    this.leading = false;
    this.post({ kind: "bye", tab: this.options.tab });
    this.release?.();
    this.release = null;
    if (this.options.bus) this.options.bus.onmessage = null;
    this.wants.clear();
    this.watched.clear();
  }

  /** Signed out: no tab streams anything until signed in again (the storage is shared). */
  setSignedIn(signedIn: boolean): void {
    if (this.signedIn === signedIn) return;
    this.signedIn = signedIn;
    if (!signedIn) {
      this.positions = {};
      if (this.channels) this.channels.closeAll();
    }
    this.reconcile();
  }

  /** A stream of `channel` for this tab, fed by the leader (the LiveChannels `open`). */
  subscribe(channel: string, subscriber: Subscriber): ChannelStream {
    return {
      start: () => {
        let set = this.subscribers.get(channel);
        if (!set) this.subscribers.set(channel, (set = new Set()));
        set.add(subscriber);
        subscriber.onStatus(this.statuses[channel] ?? "connecting");
        this.announce();
      },
      close: () => {
        const set = this.subscribers.get(channel);
        set?.delete(subscriber);
        if (set && set.size === 0) this.subscribers.delete(channel);
        this.announce();
      },
      // the leader's LiveChannels resumes the wanted channels refused for good
      resume: () => this.announce(),
    };
  }

  /** The session changed (new tokens): the leader opens again the channels refused for good (403, 404). */
  resumeUnavailable(): void {
    this.channels?.resumeUnavailable();
  }

  private get mine(): string[] {
    return [...this.subscribers.keys()].sort();
  }

  /** Tell the leader (maybe this tab) which channels this tab shows. */
  private announce(): void {
    if (this.leading) {
      this.reconcile();
      return;
    }
    if (!this.started) return;
    this.post({ kind: "want", tab: this.options.tab, channels: this.mine, positions: this.positions });
  }

  private receive(message: TabMessage): void {
    switch (message.kind) {
      case "leader":
        if (message.tab !== this.options.tab) this.announce();
        return;
      case "event":
        this.positions[message.channel] = later(this.positions[message.channel], message.position)!;
        this.deliver(message.channel, message.event);
        return;
      case "reset":
        this.positions[message.channel] = later(this.positions[message.channel], message.position)!;
        this.deliverReset(message.channel);
        return;
      case "status":
        this.hear(message.statuses, message.positions);
        return;
      case "want":
        if (!this.leading) return;
        for (const [channel, position] of Object.entries(message.positions)) {
          this.positions[channel] = later(this.positions[channel], position)!;
        }
        this.wants.set(message.tab, new Set(message.channels));
        this.watch(message.tab);
        this.reconcile();
        this.broadcastStatus(); // a newcomer learns what is already live
        return;
      case "bye":
        if (this.leading && this.wants.delete(message.tab)) this.reconcile();
        return;
    }
  }

  /** The leader's statuses and positions: pass them to this tab's subscribers. */
  private hear(statuses: Record<string, StreamStatus>, positions: Record<string, string>): void {
    this.statuses = { ...statuses };
    const kept: Record<string, string> = {};
    for (const channel of Object.keys(statuses)) {
      const position = later(this.positions[channel], positions[channel]);
      if (position !== undefined) kept[channel] = position;
    }
    this.positions = kept; // a closed channel's position would replay too much on a reopen
    for (const [channel, set] of this.subscribers) {
      const status = statuses[channel] ?? "connecting";
      for (const subscriber of [...set]) subscriber.onStatus(status);
    }
  }

  private deliver(channel: string, event: Envelope): void {
    for (const subscriber of [...(this.subscribers.get(channel) ?? [])]) subscriber.onEvent(event);
  }

  private deliverReset(channel: string): void {
    for (const subscriber of [...(this.subscribers.get(channel) ?? [])]) subscriber.onReset?.();
  }

  private lead(): void {
    this.leading = true;
    this.statuses = {}; // the previous leader's; this tab's own streams report afresh
    this.channels = new LiveChannels({
      open: (channel, onStatus) => this.openReal(channel, onStatus),
      onStatus: () => this.broadcastStatus(),
      lingerMs: this.options.lingerMs,
      schedule: this.options.schedule,
      cancel: this.options.cancel,
    });
    this.post({ kind: "leader", tab: this.options.tab });
    this.reconcile();
  }

  private openReal(channel: string, onStatus: (status: StreamStatus) => void): ChannelStream {
    const resumeFrom = this.positions[channel] ?? null;
    return this.options.openStream(channel, resumeFrom, {
      onPosition: (id) => {
        this.positions[channel] = id;
      },
      onEvent: (event) => {
        const position = String(event.position);
        this.post({ kind: "event", channel, position, event });
        this.deliver(channel, event);
      },
      onReset: () => {
        // every tab showing the channel reads it again, not only the leader
        const position = this.positions[channel];
        if (position !== undefined) this.post({ kind: "reset", channel, position });
        this.deliverReset(channel);
      },
      onStatus: (status) => {
        this.statuses = { ...this.statuses, [channel]: status };
        onStatus(status); // LiveChannels reports, which broadcasts
      },
    });
  }

  /** Open the union of what every tab shows (nothing while signed out). */
  private reconcile(): void {
    if (!this.leading || !this.channels) return;
    const union = new Set<string>();
    if (this.signedIn) {
      for (const channel of this.mine) union.add(channel);
      for (const set of this.wants.values()) for (const channel of set) union.add(channel);
    }
    this.channels.want([...union]);
  }

  private broadcastStatus(): void {
    if (!this.leading || !this.channels) return;
    const statuses: Record<string, StreamStatus> = {};
    for (const channel of this.channels.open) statuses[channel] = this.statuses[channel] ?? "connecting";
    this.statuses = statuses;
    this.post({ kind: "status", statuses, positions: this.positions });
    this.hear(statuses, this.positions);
  }

  /** Forget a follower once its page is gone, even if it could not say bye (a crash). */
  private watch(tab: string): void {
    const { locks } = this.options;
    if (!locks || this.watched.has(tab)) return;
    this.watched.add(tab);
    void locks.request(tabLock(tab), async () => {
      this.watched.delete(tab);
      if (this.wants.delete(tab)) this.reconcile();
    });
  }

  private post(message: TabMessage): void {
    try {
      this.options.bus?.postMessage(message);
    } catch {
      // the bus is closed: the page is going away
    }
  }
}
