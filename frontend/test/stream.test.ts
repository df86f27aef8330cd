import { QueryClient } from "@tanstack/react-query";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProblemError } from "@/api/client";
import {
  asyncApiQuery,
  asyncApiRetryDelay,
  channelEventTypes,
  LiveStream,
  SseParser,
  type AsyncApiDoc,
  type SseMessage,
  type StreamStatus,
} from "@/lib/stream";

function parse(chunks: string[]): { messages: SseMessage[]; parser: SseParser } {
  const messages: SseMessage[] = [];
  const parser = new SseParser((m) => messages.push(m));
  for (const chunk of chunks) parser.push(chunk);
  return { messages, parser };
}

/** Every way of cutting `text` in two (and in single characters). */
function splits(text: string): string[][] {
  const out: string[][] = [[...text]];
  for (let i = 0; i <= text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

describe("SseParser (text/event-stream)", () => {
  const stream = 'id: 42\nevent: deals.deal.stage_changed\ndata: {"a":1}\n\n: heartbeat\n\nid: 43\nevent: x\ndata: two\n\n';

  it("reads a message whichever way the chunks cut its lines", () => {
    for (const chunks of splits(stream)) {
      expect(parse(chunks).messages).toEqual([
        { event: "deals.deal.stage_changed", data: '{"a":1}', lastEventId: "42" },
        { event: "x", data: "two", lastEventId: "43" },
      ]);
    }
  });

  it("takes CRLF, CR and LF line ends, also a CRLF split between two chunks (one line end, not two)", () => {
    const crlf = "id: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\nevent: b\rdata: z\r\r";
    for (const chunks of splits(crlf)) {
      expect(parse(chunks).messages).toEqual([
        { event: "a", data: "x\ny", lastEventId: "1" },
        { event: "b", data: "z", lastEventId: "1" },
      ]);
    }
    // the LF after a chunk's closing CR ends nothing more, then LFs count again
    expect(parse(["data: a\r", "\n", "\n"]).messages).toEqual([{ event: "message", data: "a", lastEventId: "" }]);
  });

  it("ignores comments (the server's heartbeats) and unknown fields, and sends no message without data", () => {
    const { messages } = parse([": ping\n\n:\n\nevent: lonely\n\nfoo: bar\ndata: d\n\n"]);
    expect(messages).toEqual([{ event: "message", data: "d", lastEventId: "" }]);
  });

  it("joins multi-line data with LF, keeps empty data lines, and strips only one space after the colon", () => {
    const { messages } = parse(["data:  two spaces\ndata\ndata:x\ndata: \n\n"]);
    expect(messages).toEqual([{ event: "message", data: " two spaces\n\nx\n", lastEventId: "" }]);
  });

  it("keeps the last id for later messages, takes an id of a message without data, and ignores one with a NUL", () => {
    const { messages, parser } = parse(["id: 7\ndata: a\n\ndata: b\n\nid: 9\n\nid: 1\0\ndata: c\n\nid\ndata: d\n\n"]);
    expect(messages.map((m) => m.lastEventId)).toEqual(["7", "7", "9", ""]);
    expect(parser.lastEventId).toBe("");
  });

  it("reads retry: when it is ASCII digits only", () => {
    expect(parse(["retry: 3000\n\n"]).parser.retry).toBe(3000);
    expect(parse(["retry: 3000\nretry: 3s\nretry: -1\nretry: 1.5\n\n"]).parser.retry).toBe(3000);
  });

  it("drops a message the stream ended in (no blank line after it)", () => {
    expect(parse(["data: cut off"]).messages).toEqual([]);
  });
});

const encoder = new TextEncoder();

/** One GET of the stream, answered by the test. */
class FakeConnection {
  aborted = false;
  private body: ReadableStreamDefaultController<Uint8Array> | null = null;
  private answer!: (response: Response) => void;
  private reject!: (error: unknown) => void;
  readonly response = new Promise<Response>((resolve, reject) => {
    this.answer = resolve;
    this.reject = reject;
  });

  constructor(
    readonly url: string,
    readonly headers: Record<string, string>,
    signal: AbortSignal,
  ) {
    signal.addEventListener("abort", () => {
      this.aborted = true;
      this.reject(new DOMException("aborted", "AbortError"));
      try {
        this.body?.error(new DOMException("aborted", "AbortError"));
      } catch {
        // already closed
      }
    });
  }

  /** The stream opens (200 text/event-stream). */
  open() {
    const stream = new ReadableStream<Uint8Array>({ start: (controller) => void (this.body = controller) });
    this.answer(new Response(stream, { status: 200, headers: { "Content-Type": "text/event-stream" } }));
  }
  refuse(status: number, headers: Record<string, string> = {}) {
    this.answer(new Response(JSON.stringify({ status }), { status, headers: { "Content-Type": "application/problem+json", ...headers } }));
  }
  unreachable() {
    this.reject(new TypeError("Failed to fetch"));
  }
  send(text: string) {
    this.body!.enqueue(encoder.encode(text));
  }
  emit(type: string, id: string, data: unknown) {
    this.send(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }
  /** The server ends the response. */
  end() {
    this.body!.close();
  }
  /** The network drops it. */
  fail() {
    this.body!.error(new TypeError("network error"));
  }
}

function harness(options: { random?: () => number } = {}) {
  const connections: FakeConnection[] = [];
  const timers: (() => void)[] = [];
  const delays: number[] = [];
  const clock = { now: 1_000_000 };
  const statuses: StreamStatus[] = [];
  const events: string[] = [];
  const positions: string[] = [];
  let resets = 0;
  const stream = new LiveStream({
    channel: "deals",
    types: ["deals.deal.stage_changed"],
    onEvent: (e) => events.push(`${e.position}:${e.subject}`),
    onStatus: (s) => statuses.push(s),
    onPosition: (id) => positions.push(id),
    onReset: () => void (resets += 1),
    request: (url, init) => {
      const connection = new FakeConnection(url, init.headers, init.signal);
      connections.push(connection);
      return connection.response;
    },
    origin: "http://crm2.test",
    schedule: (run, ms) => {
      delays.push(ms);
      timers.push(run);
    },
    random: options.random ?? (() => 0),
    now: () => clock.now,
  });
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  };
  /** The connection opened last, answered 200. */
  const opened = async () => {
    await flush();
    const connection = connections.at(-1)!;
    connection.open();
    await flush();
    return connection;
  };
  return { stream, connections, timers, delays, clock, statuses, events, positions, resets: () => resets, flush, opened };
}

describe("LiveStream", () => {
  it("GETs the channel with no token in the URL (the request is signed) and reports live on the connected message", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    expect(first.url).toBe("http://crm2.test/api/v1/streams/deals");
    expect(first.headers).toEqual({ Accept: "text/event-stream" });
    first.emit("connected", "41", { position: 41 });
    await h.flush();
    expect(h.statuses).toEqual(["live"]);
  });

  it("delivers the channel's events and resumes after a drop from the last id (Last-Event-ID)", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    first.emit("connected", "41", { position: 41 });
    first.emit("deals.deal.stage_changed", "42", { position: 42, subject: "d1", data: {} });
    first.emit("other.type", "43", { position: 43, subject: "d2", data: {} });
    await h.flush();
    first.fail();
    await h.flush();
    expect(first.aborted).toBe(true);
    expect(h.statuses.at(-1)).toBe("reconnecting");
    h.timers.shift()!();
    const second = await h.opened();
    expect(second.url).toBe("http://crm2.test/api/v1/streams/deals");
    expect(second.headers["Last-Event-ID"]).toBe("42");
    second.emit("connected", "42", { position: 42 });
    await h.flush();
    expect(h.statuses.at(-1)).toBe("live");
    expect(h.events).toEqual(["42:d1"]);
  });

  it("reconnects at once when the server says reconnect, resuming from the connected position", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    first.emit("connected", "7", { position: 7 });
    first.send('event: reconnect\ndata: {"reason": "lifetime"}\nretry: 3000\n\n');
    first.emit("deals.deal.stage_changed", "8", { position: 8, subject: "late", data: {} });
    await h.flush();
    expect(first.aborted).toBe(true);
    expect(h.events).toEqual([]);
    expect(h.timers).toHaveLength(1);
    h.timers.shift()!();
    const second = await h.opened();
    expect(second.headers["Last-Event-ID"]).toBe("7");
  });

  it("on a reset (a resume from too far back) asks for a reload and resumes from the reset's position", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    first.emit("connected", "1000", { position: 1000 });
    first.emit("reset", "25042", { reason: "replay-too-long", position: 25042, behind: 24042 });
    await h.flush();
    expect(h.resets()).toBe(1);
    expect(h.positions).toEqual(["1000", "25042"]);
    expect(h.stream.lastEventId).toBe("25042");
    first.end();
    await h.flush();
    h.timers.shift()!();
    const second = await h.opened();
    expect(second.headers["Last-Event-ID"]).toBe("25042");
  });

  it("a resume position the server never sent (400: its log was restored) starts afresh and reloads, not refused for ever", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    first.emit("connected", "900", { position: 900 });
    await h.flush();
    first.fail();
    await h.flush();
    h.timers.shift()!();
    await h.flush();
    h.connections[1]!.refuse(400);
    await h.flush();
    expect(h.resets()).toBe(1);
    h.timers.shift()!();
    const third = await h.opened();
    expect(third.headers["Last-Event-ID"]).toBeUndefined();
  });

  it("has the data read again when the server ends the stream because the reader lost access (its answer shows at once)", async () => {
    const h = harness();
    h.stream.start();
    for (const reason of ["lifetime", "forbidden", "token-expired", "credentials-revoked", "shutdown"]) {
      const connection = await h.opened();
      connection.emit("connected", "7", { position: 7 });
      connection.send(`event: reconnect\ndata: {"reason": "${reason}"}\n\n`);
      await h.flush();
      h.timers.shift()!();
    }
    expect(h.resets()).toBe(2);
  });

  it("backs off when the server ends every stream right after opening it, instead of reconnecting in a loop", async () => {
    const h = harness();
    h.stream.start();
    for (let i = 0; i < 5; i++) {
      const connection = await h.opened();
      connection.emit("connected", "7", { position: 7 });
      h.clock.now += 50;
      connection.send('event: reconnect\ndata: {"reason": "error"}\n\n');
      await h.flush();
      h.timers.shift()!();
    }
    expect(h.delays).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  it("backs off when every connection opens and drops at once, or cannot be made", async () => {
    const h = harness();
    h.stream.start();
    for (let i = 0; i < 2; i++) {
      const connection = await h.opened();
      h.clock.now += 50;
      connection.end();
      await h.flush();
      h.timers.shift()!();
    }
    for (let i = 0; i < 2; i++) {
      await h.flush();
      h.connections.at(-1)!.unreachable();
      await h.flush();
      h.timers.shift()!();
    }
    expect(h.delays).toEqual([1000, 2000, 4000, 8000]);
  });

  it("after a long healthy stream starts the back-off afresh, and a server reconnect is immediate", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.connections[0]!.refuse(401); // refused: the next wait doubles
    await h.flush();
    h.timers.shift()!();
    const second = await h.opened();
    second.emit("connected", "7", { position: 7 });
    h.clock.now += 3_600_000;
    second.send('event: reconnect\ndata: {"reason": "lifetime"}\n\n');
    await h.flush();
    h.timers.shift()!();
    const third = await h.opened();
    h.clock.now += 600_000;
    third.fail(); // a network drop after ten healthy minutes
    await h.flush();
    expect(h.delays).toEqual([1000, 0, 1000]);
  });

  for (const [status, type] of [
    [503, "streams-full"],
    [429, "too-many-streams"],
  ] as const) {
    it(`waits the Retry-After of a ${status} ${type} refusal (with jitter), read from the answer itself (no second GET)`, async () => {
      let random = 0;
      const h = harness({ random: () => random });
      h.stream.start();
      for (let i = 0; i < 3; i++) {
        await h.flush();
        random = i === 0 ? 0 : 1;
        h.connections.at(-1)!.refuse(status, { "Retry-After": "15" });
        await h.flush();
        expect(h.statuses.at(-1)).toBe("reconnecting");
        h.timers.shift()!();
      }
      await h.flush();
      expect(h.delays).toEqual([15_000, 22_500, 22_500]);
      expect(h.connections).toHaveLength(4); // one GET per try, and it does not give up either
    });
  }

  it("backs off as before when a refusal gives no Retry-After, or is not a 429/503", async () => {
    const h = harness();
    h.stream.start();
    const answers: [number, Record<string, string>][] = [[503, {}], [401, { "Retry-After": "15" }], [500, {}]];
    for (const [status, headers] of answers) {
      await h.flush();
      h.connections.at(-1)!.refuse(status, headers);
      await h.flush();
      h.timers.shift()!();
    }
    expect(h.delays).toEqual([1000, 2000, 4000]);
  });

  it("takes a 200 that is no event stream (a proxy's page) for a refusal", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.connections[0]!.refuse(200);
    await h.flush();
    expect(h.statuses).toEqual(["reconnecting"]);
    expect(h.delays).toEqual([1000]);
  });

  it("a refusal's Retry-After waits at most a minute (a wrong header does not stop live updates for long)", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.connections[0]!.refuse(503, { "Retry-After": "86400" });
    await h.flush();
    expect(h.delays).toEqual([60_000]);
  });

  it("stops for good on close: the request is aborted, and no reconnect follows", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    h.stream.close();
    await h.flush();
    expect(first.aborted).toBe(true);
    expect(h.timers).toHaveLength(0);
    expect(h.statuses.at(-1)).toBe("closed");
  });

  for (const status of [403, 404]) {
    it(`stops retrying after a ${status} (a retry meets it every time), shows unavailable, and resume() opens it again`, async () => {
      const h = harness();
      h.stream.start();
      await h.flush();
      h.connections[0]!.refuse(status);
      await h.flush();
      expect(h.statuses).toEqual(["unavailable"]);
      expect(h.timers).toHaveLength(0);
      expect(h.connections).toHaveLength(1);
      h.stream.resume();
      const second = await h.opened();
      second.emit("connected", "7", { position: 7 });
      await h.flush();
      expect(h.statuses).toEqual(["unavailable", "connecting", "live"]);
      h.stream.resume(); // a live stream is left alone
      await h.flush();
      expect(h.connections).toHaveLength(2);
    });
  }

  it("a stream ended because the reader lost the channel's permission stops at the reconnect's 403", async () => {
    const h = harness();
    h.stream.start();
    const first = await h.opened();
    first.emit("connected", "7", { position: 7 });
    first.send('event: reconnect\ndata: {"reason": "forbidden"}\n\n');
    await h.flush();
    h.timers.shift()!();
    await h.flush();
    h.connections[1]!.refuse(403);
    await h.flush();
    expect(h.statuses.at(-1)).toBe("unavailable");
    expect(h.timers).toHaveLength(0);
  });

  it("a close while the GET is under way aborts it and opens nothing", async () => {
    const h = harness();
    h.stream.start();
    await h.flush();
    h.stream.close();
    await h.flush();
    expect(h.connections[0]!.aborted).toBe(true);
    expect(h.timers).toHaveLength(0);
  });
});

describe("LiveStream idle watchdog", () => {
  afterEach(() => void vi.useRealTimers());

  it("aborts and reconnects a stream that read nothing, heartbeats included, for 2.5 heartbeat intervals", async () => {
    vi.useFakeTimers();
    const h = harness();
    const flush = () => vi.advanceTimersByTimeAsync(0);
    h.stream.start();
    await flush();
    const first = h.connections[0]!;
    first.open();
    await flush();
    first.emit("connected", "7", { position: 7, heartbeat_seconds: 2 });
    await flush();
    expect(h.statuses).toEqual(["live"]);
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(2000);
      first.send(": ping - now\r\n\r\n"); // the heartbeats keep it alive
      await flush();
    }
    await vi.advanceTimersByTimeAsync(4999);
    expect(first.aborted).toBe(false);
    expect(h.statuses).toEqual(["live"]);
    // the network is gone without a reset: nothing more comes, and no error either
    await vi.advanceTimersByTimeAsync(1);
    expect(first.aborted).toBe(true);
    expect(h.statuses.at(-1)).toBe("reconnecting");
    expect(h.timers).toHaveLength(1);
    h.timers.shift()!();
    await flush();
    const second = h.connections[1]!;
    expect(second.headers["Last-Event-ID"]).toBe("7");
    second.open();
    await flush();
    h.stream.close();
    await vi.advanceTimersByTimeAsync(120_000); // a closed stream's watchdog reopens nothing
    expect(h.timers).toHaveLength(0);
    expect(h.connections).toHaveLength(2);
  });

  it("waits 2.5 times the default 15 s heartbeat until the server says its interval", async () => {
    vi.useFakeTimers();
    const h = harness();
    h.stream.start();
    await vi.advanceTimersByTimeAsync(0);
    h.connections[0]!.open();
    await vi.advanceTimersByTimeAsync(37_499);
    expect(h.connections[0]!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.connections[0]!.aborted).toBe(true);
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
