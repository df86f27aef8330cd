import { QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { ProblemError } from "@/api/client";
import {
  asyncApiQuery,
  asyncApiRetryDelay,
  channelEventTypes,
  LiveStream,
  type AsyncApiDoc,
  type EventSourceLike,
  type Refusal,
  type StreamStatus,
} from "@/lib/stream";

class FakeSource implements EventSourceLike {
  onopen: EventSourceLike["onopen"] = null;
  onerror: EventSourceLike["onerror"] = null;
  listeners = new Map<string, ((m: MessageEvent) => void)[]>();
  closed = false;
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (m: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  emit(type: string, id: string, data: unknown) {
    const message = new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id });
    for (const l of this.listeners.get(type) ?? []) l(message);
  }
  fail() {
    this.onerror?.call(this, new Event("error"));
  }
  close() {
    this.closed = true;
  }
}

function harness(options: { refusal?: (url: string) => Promise<Refusal | null>; random?: () => number } = {}) {
  const sources: FakeSource[] = [];
  const timers: (() => void)[] = [];
  const delays: number[] = [];
  const clock = { now: 1_000_000 };
  const statuses: StreamStatus[] = [];
  const events: string[] = [];
  const positions: string[] = [];
  let resets = 0;
  let tokens = 0;
  const stream = new LiveStream({
    channel: "deals",
    types: ["deals.deal.stage_changed"],
    onEvent: (e) => events.push(`${e.position}:${e.subject}`),
    onStatus: (s) => statuses.push(s),
    onPosition: (id) => positions.push(id),
    onReset: () => void (resets += 1),
    streamToken: async () => `t${++tokens}`,
    origin: "http://crm2.test",
    openSource: (url) => {
      const source = new FakeSource(url);
      sources.push(source);
      return source;
    },
    schedule: (run, ms) => {
      delays.push(ms);
      timers.push(run);
    },
    refusal: options.refusal ?? (async () => null),
    random: options.random ?? (() => 0),
    now: () => clock.now,
  });
  const flush = () => new Promise((r) => setTimeout(r, 0));
  return { stream, sources, timers, delays, clock, statuses, events, positions, resets: () => resets, flush };
}

describe("LiveStream", () => {
  it("opens with a fresh stream token and reports live on the connected message", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    expect(h.sources).toHaveLength(1);
    expect(h.sources[0]!.url).toBe("http://crm2.test/api/v1/streams/deals?token=t1");
    h.sources[0]!.emit("connected", "41", { position: 41 });
    expect(h.statuses).toEqual(["live"]);
  });

  it("delivers named events and resumes after a drop from the last id with a new token", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    const first = h.sources[0]!;
    first.emit("connected", "41", { position: 41 });
    first.emit("deals.deal.stage_changed", "42", { position: 42, subject: "d1", data: {} });
    first.fail();
    expect(first.closed).toBe(true);
    expect(h.statuses.at(-1)).toBe("reconnecting");
    h.timers.shift()!();
    await h.flush();
    expect(h.sources[1]!.url).toBe("http://crm2.test/api/v1/streams/deals?token=t2&last_event_id=42");
    h.sources[1]!.emit("connected", "42", { position: 42 });
    expect(h.statuses.at(-1)).toBe("live");
    expect(h.events).toEqual(["42:d1"]);
  });

  it("reconnects at once when the server says reconnect, resuming from the connected position", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.sources[0]!.emit("connected", "7", { position: 7 });
    h.sources[0]!.emit("reconnect", "", { reason: "lifetime" });
    h.timers.shift()!();
    await h.flush();
    expect(h.sources[1]!.url).toContain("last_event_id=7");
  });

  it("on a reset (a resume from too far back) asks for a reload and resumes from the reset's position", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.sources[0]!.emit("connected", "1000", { position: 1000 });
    h.sources[0]!.emit("reset", "25042", { reason: "replay-too-long", position: 25042, behind: 24042 });
    expect(h.resets()).toBe(1);
    expect(h.positions).toEqual(["1000", "25042"]);
    expect(h.stream.lastEventId).toBe("25042");
    h.sources[0]!.fail();
    h.timers.shift()!();
    await h.flush();
    expect(h.sources[1]!.url).toContain("last_event_id=25042");
  });

  it("backs off when the server ends every stream right after opening it, instead of reconnecting in a loop", async () => {
    const h = harness();
    h.stream.start();
    for (let i = 0; i < 5; i++) {
      await h.flush();
      const source = h.sources.at(-1)!;
      source.onopen?.call(source, new Event("open"));
      source.emit("connected", "7", { position: 7 });
      h.clock.now += 50;
      source.emit("reconnect", "", { reason: "error" });
      h.timers.shift()!();
    }
    expect(h.delays).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  it("backs off when every connection opens and drops at once", async () => {
    const h = harness();
    h.stream.start();
    for (let i = 0; i < 4; i++) {
      await h.flush();
      const source = h.sources.at(-1)!;
      source.onopen?.call(source, new Event("open"));
      h.clock.now += 50;
      source.fail();
      h.timers.shift()!();
    }
    expect(h.delays).toEqual([1000, 2000, 4000, 8000]);
  });

  it("after a long healthy stream starts the back-off afresh, and a server reconnect is immediate", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.sources[0]!.fail(); // refused (401/429): the next wait doubles
    await h.flush();
    h.timers.shift()!();
    await h.flush();
    const source = h.sources[1]!;
    source.onopen?.call(source, new Event("open"));
    source.emit("connected", "7", { position: 7 });
    h.clock.now += 3_600_000;
    source.emit("reconnect", "", { reason: "lifetime" });
    h.timers.shift()!();
    await h.flush();
    h.sources[2]!.onopen?.call(h.sources[2]!, new Event("open"));
    h.clock.now += 600_000;
    h.sources[2]!.fail(); // a network drop after ten healthy minutes
    expect(h.delays).toEqual([1000, 0, 1000]);
  });

  for (const [status, type] of [
    [503, "streams-full"],
    [429, "too-many-streams"],
  ] as const) {
    it(`waits the Retry-After of a ${status} ${type} refusal (with jitter) before trying again, not 1 s, 2 s …`, async () => {
      const asked: string[] = [];
      let random = 0;
      const h = harness({
        refusal: async (url) => {
          asked.push(url);
          return { status, retryAfter: 15 };
        },
        random: () => random,
      });
      h.stream.start();
      for (let i = 0; i < 3; i++) {
        await h.flush();
        random = i === 0 ? 0 : 1;
        h.sources.at(-1)!.fail(); // EventSource hides the 503/429: the client asks why
        await h.flush();
        expect(h.statuses.at(-1)).toBe("reconnecting");
        h.timers.shift()!();
      }
      await h.flush();
      expect(asked).toEqual(h.sources.slice(0, 3).map((s) => s.url));
      expect(h.delays).toEqual([15_000, 22_500, 22_500]);
      expect(h.sources).toHaveLength(4); // it does not give up either
    });
  }

  it("backs off as before when a refusal gives no Retry-After or cannot be asked about", async () => {
    const answers: (Refusal | null)[] = [{ status: 503, retryAfter: null }, null, { status: 401, retryAfter: 15 }];
    const h = harness({ refusal: async () => answers.shift() ?? null });
    h.stream.start();
    for (let i = 0; i < 3; i++) {
      await h.flush();
      h.sources.at(-1)!.fail();
      await h.flush();
      h.timers.shift()!();
    }
    expect(h.delays).toEqual([1000, 2000, 4000]);
  });

  it("a refusal's Retry-After waits at most a minute (a wrong header does not stop live updates for long)", async () => {
    const h = harness({ refusal: async () => ({ status: 503, retryAfter: 86_400 }) });
    h.stream.start();
    await h.flush();
    h.sources[0]!.fail();
    await h.flush();
    expect(h.delays).toEqual([60_000]);
  });

  it("a stream that dropped after it was connected is not asked about: it resumes after the usual back-off", async () => {
    const asked: string[] = [];
    const h = harness({ refusal: async (url) => (asked.push(url), { status: 503, retryAfter: 15 }) });
    h.stream.start();
    await h.flush();
    h.sources[0]!.emit("connected", "7", { position: 7 });
    h.sources[0]!.fail();
    expect(asked).toEqual([]);
    expect(h.delays).toEqual([1000]);
  });

  it("stops for good on close: no reconnect after a late error", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    const source = h.sources[0]!;
    h.stream.close();
    source.fail();
    expect(h.timers).toHaveLength(0);
    expect(h.statuses.at(-1)).toBe("closed");
  });
});

describe("channelEventTypes", () => {
  it("lists a channel's event types from /asyncapi.json, without versions or repeats", () => {
    const doc = {
      channels: {
        "stream.tasks": {
          messages: { "tasks.task.created.v1": {}, "tasks.task.created.v2": {}, "tasks.sla.breached.v1": {} },
        },
      },
    };
    expect(channelEventTypes(doc, "tasks")).toEqual(["tasks.sla.breached", "tasks.task.created"]);
    expect(channelEventTypes(doc, "nope")).toEqual([]);
  });
});

describe("reading /asyncapi.json", () => {
  it("keeps asking while it fails, so live updates start once it answers (not one retry, then never)", async () => {
    let failures = 0;
    const read = async (): Promise<AsyncApiDoc> => {
      if (failures < 5) {
        failures += 1;
        throw new Error("503 Service Unavailable");
      }
      return { channels: { "stream.deals": { messages: { "deals.deal_created.v1": {} } } } };
    };
    const client = new QueryClient();
    const doc = await client.fetchQuery({ ...asyncApiQuery(read), retryDelay: 0 });
    expect(failures).toBe(5);
    expect(channelEventTypes(doc, "deals")).toEqual(["deals.deal_created"]);
    client.clear();
  });

  it("stops asking after a 404, 401 or 403 (no events doc: no live updates), not for ever", async () => {
    for (const status of [404, 401, 403]) {
      let reads = 0;
      const read = async (): Promise<AsyncApiDoc> => {
        reads += 1;
        throw new ProblemError(status, "Not Found", "");
      };
      const client = new QueryClient();
      await expect(client.fetchQuery({ ...asyncApiQuery(read), retryDelay: 0 })).rejects.toBeInstanceOf(ProblemError);
      expect(reads).toBe(1);
      client.clear();
    }
  });

  it("keeps backing off after a 5xx answer", async () => {
    let reads = 0;
    const read = async (): Promise<AsyncApiDoc> => {
      reads += 1;
      if (reads < 4) throw new ProblemError(502, "Bad Gateway", "");
      return {};
    };
    const client = new QueryClient();
    await client.fetchQuery({ ...asyncApiQuery(read), retryDelay: 0 });
    expect(reads).toBe(4);
    client.clear();
  });

  it("backs off between reads: 1 s, 2 s, 4 s … never more than a minute apart", () => {
    expect([0, 1, 2, 3].map(asyncApiRetryDelay)).toEqual([1000, 2000, 4000, 8000]);
    expect(asyncApiRetryDelay(20)).toBe(60_000);
  });
});
