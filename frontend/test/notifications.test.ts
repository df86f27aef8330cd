import { QueryClient, type InfiniteData } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { badgeText, markedRead, markReadOptimistically, safeLink, type FeedPage, type Notification } from "@/lib/notifications";

function n(id: string, read_at: string | null = null): Notification {
  return { id, title: id, body: "", link: null, event_type: "x", subject: "s", read_at, created_at: "2026-12-03T10:00:00Z" };
}

describe("the notification bell and feed", () => {
  it("badges the unread count, hiding zero and capping at 99+", () => {
    expect(badgeText(0)).toBe("");
    expect(badgeText(7)).toBe("7");
    expect(badgeText(100)).toBe("99+");
    expect(badgeText(Number.NaN)).toBe("");
  });

  it("marks the chosen notifications read in the cached pages, keeping earlier read times", () => {
    const pages: FeedPage[] = [{ items: [n("a"), n("b", "2026-12-01T00:00:00Z")] }, { items: [n("c")] }];
    const one = markedRead(pages, ["a"], "2026-12-03T12:00:00Z");
    expect(one.flatMap((p) => p.items.map((x) => x.read_at))).toEqual([
      "2026-12-03T12:00:00Z",
      "2026-12-01T00:00:00Z",
      null,
    ]);
    const all = markedRead(pages, null, "2026-12-03T12:00:00Z");
    expect(all.flatMap((p) => p.items).every((x) => x.read_at !== null)).toBe(true);
    expect(pages[0]!.items[0]!.read_at).toBeNull(); // the cache is not mutated
  });

  it("follows only links inside the console", () => {
    expect(safeLink("/deal/?id=1")).toBe("/deal/?id=1");
    expect(safeLink("//evil.example/x")).toBeNull();
    expect(safeLink("https://evil.example/")).toBeNull();
    expect(safeLink("javascript:alert(1)")).toBeNull();
    expect(safeLink(null)).toBeNull();
  });

  it("refuses links a browser reads as another origin once it drops tabs and newlines", () => {
    // URL parsers strip ASCII tab, LF and CR: "/\t/evil" becomes "//evil", another host
    for (const link of ["/\t/evil.example/", "/\n/evil.example/", "/\r/evil.example/", "/\t\\evil.example/"]) {
      expect(new URL(link, "https://crm.example").origin).not.toBe("https://crm.example");
      expect(safeLink(link)).toBeNull();
    }
    expect(safeLink("/notifications/?q=%09")).toBe("/notifications/?q=%09");
  });
});

describe("marking read in the feed", () => {
  it("shows them read at once and unread again when the call fails, keeping earlier read times", () => {
    const client = new QueryClient();
    const key = ["notifications", "feed", false];
    client.setQueryData<InfiniteData<FeedPage>>(key, {
      pages: [{ items: [n("a"), n("b", "2026-12-01T00:00:00Z")] }, { items: [n("c")] }],
      pageParams: [""],
    });
    const readTimes = () => client.getQueryData<InfiniteData<FeedPage>>(key)!.pages.flatMap((p) => p.items.map((x) => x.read_at));
    const undo = markReadOptimistically(client, key, null, "2026-12-03T12:00:00Z");
    expect(readTimes()).toEqual(["2026-12-03T12:00:00Z", "2026-12-01T00:00:00Z", "2026-12-03T12:00:00Z"]);
    undo(); // the server refused (or the network failed): nothing was read
    expect(readTimes()).toEqual([null, "2026-12-01T00:00:00Z", null]);
  });
});
