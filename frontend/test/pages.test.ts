import { InfiniteQueryObserver, QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { cursorPages, loadNextPage, loadPages, pageRows } from "@/lib/pages";

/** A list of `total` rows served `size` a page with a cursor, and the cursors asked for. */
function listOf(total: number, size = 100) {
  const asked: (string | undefined)[] = [];
  const page = async (cursor?: string) => {
    asked.push(cursor);
    const start = cursor ? Number(cursor) : 0;
    const items = Array.from({ length: Math.min(size, total - start) }, (_, i) => ({ id: `r${start + i}` }));
    return { items, next_cursor: start + size < total ? String(start + size) : null };
  };
  return { page, asked };
}

function observe(total: number) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const { page, asked } = listOf(total);
  const observer = new InfiniteQueryObserver(client, cursorPages(["deals", "client", "c1", "contacts"], page));
  const unsubscribe = observer.subscribe(() => undefined);
  return { observer, asked, unsubscribe };
}

describe("a cursor-paginated list on a detail page", () => {
  it("offers the rows past the first page instead of dropping them (row 101 of 101)", async () => {
    const { observer, asked, unsubscribe } = observe(101);
    await observer.refetch();
    expect(pageRows(observer.getCurrentResult().data)).toHaveLength(100);
    expect(observer.getCurrentResult().hasNextPage).toBe(true); // the page shows "Load more"
    await observer.fetchNextPage();
    const rows = pageRows(observer.getCurrentResult().data);
    expect(rows.map((r) => r.id).slice(-2)).toEqual(["r99", "r100"]);
    expect(observer.getCurrentResult().hasNextPage).toBe(false);
    expect(asked).toEqual([undefined, "100"]); // the first page is asked without a cursor
    unsubscribe();
  });

  it("offers nothing more when the first page is the whole list", async () => {
    for (const total of [0, 100]) {
      const { observer, unsubscribe } = observe(total);
      await observer.refetch();
      expect(pageRows(observer.getCurrentResult().data)).toHaveLength(total);
      expect(observer.getCurrentResult().hasNextPage).toBe(false);
      unsubscribe();
    }
  });

  it("has no rows before the first page arrives", () => {
    expect(pageRows(undefined)).toEqual([]);
  });
});

describe("a short list read whole (the board's pipelines)", () => {
  it("reads every page, not the first alone (pipeline 51 of 120 is offered)", async () => {
    const { page, asked } = listOf(120, 50);
    const all = await loadPages(page);
    expect(all.items).toHaveLength(120);
    expect(all.more).toBe(false);
    expect(asked).toEqual([undefined, "50", "100"]);
  });

  it("stops at its cap and says that more are left", async () => {
    const { page } = listOf(1_000, 50);
    const all = await loadPages(page, 3);
    expect(all.items).toHaveLength(150);
    expect(all.more).toBe(true);
  });
});

describe("Load more", () => {
  it("reads the next page once when clicked twice while it loads (a double click)", async () => {
    const { observer, asked, unsubscribe } = observe(250);
    await observer.refetch();
    // each click sees the list as the page re-rendered it after the click before
    const first = loadNextPage(observer.getCurrentResult());
    const second = loadNextPage(observer.getCurrentResult());
    await Promise.all([first, second]);
    expect(asked).toEqual([undefined, "100"]);
    expect(pageRows(observer.getCurrentResult().data)).toHaveLength(200);
    await loadNextPage(observer.getCurrentResult()); // once loaded, the next click reads on
    expect(asked).toEqual([undefined, "100", "200"]);
    expect(loadNextPage(observer.getCurrentResult())).toBeUndefined(); // nothing after the last page
    unsubscribe();
  });
});
