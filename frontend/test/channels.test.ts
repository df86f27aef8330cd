import { describe, expect, it } from "vitest";
import { LiveChannels, observedChannels } from "@/lib/channels";
import type { StreamStatus } from "@/lib/stream";

const query = (key: unknown[], observers: number) => ({ queryKey: key, getObserversCount: () => observers });

describe("observedChannels", () => {
  it("names the known channels of the queries on screen, once each", () => {
    const known = new Set(["deals", "backup", "notifications"]);
    const queries = [
      query(["deals", "board"], 1),
      query(["deals", "pipelines"], 2),
      query(["backup", "status"], 0), // cached, not on screen
      query(["notifications", "unread"], 1),
      query(["auth", "me"], 1), // not a channel
    ];
    expect(observedChannels(queries, known)).toEqual(["deals", "notifications"]);
  });
});

function harness() {
  const opened: string[] = [];
  const closed: string[] = [];
  const report: Record<string, (s: StreamStatus) => void> = {};
  const timers = new Map<number, () => void>();
  const statuses: StreamStatus[] = [];
  const resumed: string[] = [];
  const retried: string[] = [];
  let next = 0;
  const live = new LiveChannels({
    open: (channel, onStatus) => {
      report[channel] = onStatus;
      return { start: () => opened.push(channel), close: () => closed.push(channel), resume: () => retried.push(channel) };
    },
    onStatus: (s) => statuses.push(s),
    onResumed: (c) => resumed.push(c),
    schedule: (run) => {
      timers.set(++next, run);
      return next;
    },
    cancel: (h) => timers.delete(h as number),
  });
  const elapse = () => {
    const due = [...timers.values()];
    timers.clear();
    for (const run of due) run();
  };
  return { live, opened, closed, report, statuses, resumed, retried, elapse };
}

describe("LiveChannels and a channel refused for good (403, 404)", () => {
  it("shows it, and asks again on a navigation (want) or a session change, not otherwise", () => {
    const h = harness();
    h.live.want(["deals", "notifications"]);
    h.report.deals!("unavailable");
    h.report.notifications!("live");
    expect(h.statuses.at(-1)).toBe("unavailable");
    expect(h.retried).toEqual([]);
    h.live.want([]); // the page unmounts ...
    h.live.want(["deals", "notifications"]); // ... and the next one shows the channel again
    expect(h.retried).toEqual(["deals"]);
    h.live.resumeUnavailable();
    expect(h.retried).toEqual(["deals", "deals"]);
    expect(h.opened).toEqual(["deals", "notifications"]);
  });
});

describe("LiveChannels", () => {
  it("opens each wanted channel once and closes one no longer wanted only after the linger", () => {
    const h = harness();
    h.live.want(["deals", "notifications"]);
    expect(h.opened).toEqual(["deals", "notifications"]);
    h.live.want(["notifications"]); // navigating away from the board ...
    h.live.want(["deals", "notifications"]); // ... and straight to a deal: the stream is kept
    h.elapse();
    expect(h.closed).toEqual([]);
    h.live.want(["backup", "notifications"]);
    expect(h.live.open).toEqual(["backup", "deals", "notifications"]);
    h.elapse();
    expect(h.closed).toEqual(["deals"]);
    expect(h.live.open).toEqual(["backup", "notifications"]);
    expect(h.opened).toEqual(["deals", "notifications", "backup"]);
  });

  it("reports the worst status of the open channels, and a reopened channel as resumed once live", () => {
    const h = harness();
    h.live.want(["deals", "tasks"]);
    h.report.deals!("live");
    expect(h.statuses.at(-1)).toBe("connecting");
    h.report.tasks!("live");
    expect(h.statuses.at(-1)).toBe("live");
    h.live.want([]);
    h.elapse();
    expect(h.statuses.at(-1)).toBe("closed");
    h.live.want(["deals"]);
    expect(h.resumed).toEqual([]);
    h.report.deals!("live");
    h.report.deals!("reconnecting");
    h.report.deals!("live");
    expect(h.resumed).toEqual(["deals"]);
  });
});
