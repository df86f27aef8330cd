import { describe, expect, it } from "vitest";
import type { Envelope, StreamStatus } from "@/lib/stream";
import { SharedStreams, type BusLike, type LocksLike, type RealStreamHandlers } from "@/lib/tabs";

/** The origin's tabs in one process: a BroadcastChannel and Web Locks with the browser's rules. */
class Origin {
  readonly buses = new Set<Bus>();
  private readonly holders = new Map<string, boolean>();
  private readonly queues = new Map<string, (() => void)[]>();
  /** every real stream any leader opened: channel, resume position, handlers, closed */
  readonly streams: {
    channel: string;
    from: string | null;
    handlers: RealStreamHandlers;
    closed: boolean;
    tab: string;
    resumed: number;
  }[] = [];
  readonly timers: (() => void)[] = [];

  bus(): Bus {
    const bus = new Bus(this);
    this.buses.add(bus);
    return bus;
  }

  /** A tab's locks; `crash()` releases everything the tab holds, as the browser does. */
  locks(): LocksLike & { crash(): void } {
    const held: (() => void)[] = [];
    const origin = this;
    return {
      request(name, callback) {
        return new Promise((resolve) => {
          const grant = () => {
            origin.holders.set(name, true);
            let done = false;
            const free = () => {
              if (done) return;
              done = true;
              origin.holders.set(name, false);
              const next = origin.queues.get(name)?.shift();
              if (next) next();
            };
            held.push(free);
            void callback().then((value) => {
              free();
              resolve(value);
            });
          };
          if (origin.holders.get(name)) {
            const queue = origin.queues.get(name) ?? [];
            queue.push(grant);
            origin.queues.set(name, queue);
          } else grant();
        });
      },
      crash() {
        for (const free of held.splice(0)) free();
      },
    };
  }

  tab(id: string) {
    const bus = this.bus();
    const locks = this.locks();
    const hub = new SharedStreams({
      tab: id,
      bus,
      locks,
      openStream: (channel, from, handlers) => {
        const stream = { channel, from, handlers, closed: false, tab: id, resumed: 0 };
        this.streams.push(stream);
        return {
          start: () => handlers.onStatus("connecting"),
          close: () => void (stream.closed = true),
          resume: () => void (stream.resumed += 1),
        };
      },
      schedule: (run) => this.timers.push(run),
      cancel: () => undefined,
    });
    return { hub, bus, locks };
  }

  open(channel?: string) {
    return this.streams.filter((s) => !s.closed && (channel === undefined || s.channel === channel));
  }

  elapse() {
    for (const run of this.timers.splice(0)) run();
  }
}

class Bus implements BusLike {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  closed = false;
  constructor(private readonly origin: Origin) {}
  postMessage(message: unknown) {
    if (this.closed) throw new Error("closed");
    const data = structuredClone(message);
    for (const other of this.origin.buses) {
      // like BroadcastChannel: every other object of the name, asynchronously, never itself
      if (other !== this && !other.closed) queueMicrotask(() => other.onmessage?.({ data }));
    }
  }
  close() {
    this.closed = true;
  }
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

const envelope = (position: number, type = "deals.deal.stage_changed"): Envelope => ({
  id: `e${position}`,
  type,
  version: 1,
  occurred_at: "2026-01-01T00:00:00Z",
  subject: "d1",
  data: {},
  position,
});

function watcher() {
  const events: number[] = [];
  const statuses: StreamStatus[] = [];
  return {
    events,
    statuses,
    subscriber: { onEvent: (e: Envelope) => events.push(e.position), onStatus: (s: StreamStatus) => statuses.push(s) },
  };
}

describe("SharedStreams", () => {
  it("a channel refused for good (403, 404) shows in every tab, and opens again on a follower's navigation or new tokens", async () => {
    const origin = new Origin();
    const a = origin.tab("a").hub.start();
    const b = origin.tab("b").hub.start();
    await settle();
    const wb = watcher();
    const subscription = b.subscribe("deals", wb.subscriber);
    subscription.start();
    await settle();
    const deals = origin.open("deals")[0]!;
    deals.handlers.onStatus("unavailable");
    await settle();
    expect(wb.statuses.at(-1)).toBe("unavailable");
    expect(deals.resumed).toBe(0);
    subscription.resume?.(); // b's page showing deals mounted again (its LiveChannels asks)
    await settle();
    expect(deals.resumed).toBe(1);
    b.resumeUnavailable(); // a follower holds no stream: the leader does it
    a.resumeUnavailable();
    await settle();
    expect(deals.resumed).toBe(2);
    expect(origin.open("deals")).toHaveLength(1);
  });

  it("opens each channel once for all tabs: the leader holds the union and relays every event", async () => {
    const origin = new Origin();
    const a = origin.tab("a").hub.start();
    const b = origin.tab("b").hub.start();
    const c = origin.tab("c").hub.start();
    await settle();
    expect([a.isLeader, b.isLeader, c.isLeader]).toEqual([true, false, false]);

    const wa = watcher();
    const wb = watcher();
    const wc = watcher();
    a.subscribe("deals", wa.subscriber).start();
    b.subscribe("deals", wb.subscriber).start();
    c.subscribe("notifications", wc.subscriber).start();
    await settle();
    expect(origin.open().map((s) => [s.tab, s.channel]).sort()).toEqual([
      ["a", "deals"],
      ["a", "notifications"],
    ]);

    const deals = origin.open("deals")[0]!;
    deals.handlers.onPosition("10");
    deals.handlers.onStatus("live");
    await settle();
    expect(wb.statuses.at(-1)).toBe("live");
    expect(wc.statuses.at(-1)).toBe("connecting"); // c's channel is not live yet

    deals.handlers.onPosition("11");
    deals.handlers.onEvent(envelope(11));
    await settle();
    expect(wa.events).toEqual([11]);
    expect(wb.events).toEqual([11]);
    expect(wc.events).toEqual([]); // c does not show deals: nothing delivered
  });

  it("closes a channel once no tab wants it (after the linger), and when its tab says bye", async () => {
    const origin = new Origin();
    const a = origin.tab("a").hub.start();
    const b = origin.tab("b").hub.start();
    await settle();
    const stream = b.subscribe("backup", watcher().subscriber);
    stream.start();
    await settle();
    expect(origin.open("backup")).toHaveLength(1);
    stream.close();
    await settle();
    expect(origin.open("backup")).toHaveLength(1); // lingers: b may be navigating
    origin.elapse();
    expect(origin.open("backup")).toHaveLength(0);

    b.subscribe("tasks", watcher().subscriber).start();
    await settle();
    expect(a.open).toEqual(["tasks"]);
    b.stop(); // the page goes away
    await settle();
    origin.elapse();
    expect(a.open).toEqual([]);
  });

  it("forgets a follower that crashed without a word, through its tab lock", async () => {
    const origin = new Origin();
    const a = origin.tab("a").hub.start();
    const tabB = origin.tab("b");
    tabB.hub.start();
    await settle();
    tabB.hub.subscribe("tasks", watcher().subscriber).start();
    await settle();
    expect(a.open).toEqual(["tasks"]);
    tabB.bus.close();
    tabB.locks.crash();
    await settle();
    origin.elapse();
    expect(a.open).toEqual([]);
  });

  it("hands over when the leader's page goes away: the next tab resumes every channel from its last position", async () => {
    const origin = new Origin();
    const tabA = origin.tab("a");
    const a = tabA.hub.start();
    const b = origin.tab("b").hub.start();
    const c = origin.tab("c").hub.start();
    await settle();
    const wb = watcher();
    const wc = watcher();
    a.subscribe("deals", watcher().subscriber).start();
    b.subscribe("deals", wb.subscriber).start();
    c.subscribe("notifications", wc.subscriber).start();
    await settle();
    const deals = origin.open("deals")[0]!;
    const notes = origin.open("notifications")[0]!;
    deals.handlers.onPosition("40");
    deals.handlers.onStatus("live");
    notes.handlers.onPosition("41");
    notes.handlers.onStatus("live");
    deals.handlers.onPosition("42");
    deals.handlers.onEvent(envelope(42));
    await settle();

    // the leader's tab crashes: the browser frees its locks, b is next in the queue
    tabA.bus.close();
    tabA.locks.crash();
    await settle();
    expect(b.isLeader).toBe(true);
    expect(c.isLeader).toBe(false);
    const reopened = origin.open().filter((s) => s.tab === "b");
    expect(reopened.map((s) => [s.channel, s.from]).sort()).toEqual([
      ["deals", "42"],
      ["notifications", "41"], // known to b only from c's want (b never showed it)
    ]);
    expect(wc.statuses.at(-1)).toBe("connecting");
    const notes2 = reopened.find((s) => s.channel === "notifications")!;
    notes2.handlers.onPosition("43");
    notes2.handlers.onStatus("live");
    notes2.handlers.onEvent(envelope(43, "notifications.notification.created"));
    await settle();
    expect(wc.statuses.at(-1)).toBe("live");
    expect(wc.events).toEqual([43]);
    expect(wb.events).toEqual([42]);
  });

  it("relays a reset to every tab showing the channel, which then resumes from the reset's position", async () => {
    const origin = new Origin();
    const tabA = origin.tab("a");
    const a = tabA.hub.start();
    const b = origin.tab("b").hub.start();
    const c = origin.tab("c").hub.start();
    await settle();
    const resets: string[] = [];
    const subscriber = (tab: string) => ({ ...watcher().subscriber, onReset: () => resets.push(tab) });
    a.subscribe("deals", subscriber("a")).start();
    b.subscribe("deals", subscriber("b")).start();
    c.subscribe("notifications", subscriber("c")).start();
    await settle();
    const deals = origin.open("deals")[0]!;
    deals.handlers.onPosition("40");
    deals.handlers.onStatus("live");
    // the server skipped 40..25042: every tab showing deals reads it again
    deals.handlers.onPosition("25042");
    deals.handlers.onReset();
    await settle();
    expect(resets.sort()).toEqual(["a", "b"]);

    tabA.bus.close();
    tabA.locks.crash();
    await settle();
    expect(b.isLeader).toBe(true);
    expect(origin.open("deals").find((s) => s.tab === "b")!.from).toBe("25042");
  });

  it("a tab that left and joined again leads once, on its new turn only", async () => {
    const origin = new Origin();
    const tabA = origin.tab("a");
    tabA.hub.start();
    const b = origin.tab("b").hub.start();
    await settle();
    b.stop(); // frozen: its first place in the leader's queue must not count any more
    b.start();
    await settle(); // b queues again, ahead of c
    const c = origin.tab("c").hub.start();
    await settle();
    b.subscribe("deals", watcher().subscriber).start();
    await settle();
    tabA.bus.close();
    tabA.locks.crash();
    await settle();
    expect([b.isLeader, c.isLeader]).toEqual([true, false]);
    // (a's streams died with its page)
    expect(origin.open().filter((s) => s.tab !== "a").map((s) => [s.tab, s.channel])).toEqual([["b", "deals"]]);
  });

  it("streams nothing while signed out, in the leader as in every tab", async () => {
    const origin = new Origin();
    const a = origin.tab("a").hub.start();
    const b = origin.tab("b").hub.start();
    await settle();
    const wb = watcher();
    b.subscribe("deals", wb.subscriber).start();
    await settle();
    expect(a.open).toEqual(["deals"]);
    origin.open("deals")[0]!.handlers.onPosition("5");
    a.setSignedIn(false);
    b.setSignedIn(false);
    await settle();
    expect(a.open).toEqual([]);
    expect(origin.open()).toHaveLength(0);
    b.subscribe("tasks", watcher().subscriber).start(); // a late want: still nothing opens
    await settle();
    expect(origin.open()).toHaveLength(0);
    a.setSignedIn(true);
    b.setSignedIn(true);
    await settle();
    expect(a.open).toEqual(["deals", "tasks"]);
    // a new sign-in starts from now: no replay of what the last session saw
    expect(origin.open().map((s) => s.from)).toEqual([null, null]);
  });

  it("leads alone where the browser has neither BroadcastChannel nor Web Locks", () => {
    const opened: string[] = [];
    const hub = new SharedStreams({
      tab: "solo",
      bus: null,
      locks: null,
      openStream: (channel) => ({ start: () => opened.push(channel), close: () => undefined }),
    }).start();
    expect(hub.isLeader).toBe(true);
    const w = watcher();
    hub.subscribe("deals", w.subscriber).start();
    expect(opened).toEqual(["deals"]);
  });
});
