/** Cursor-paginated lists (crm2's `limit`, `cursor`, `next_cursor`) read a page at a time. */

import { infiniteQueryOptions, type QueryKey } from "@tanstack/react-query";

export interface CursorPage<T> {
  items: T[];
  next_cursor?: string | null;
}

/**
 * The options of an infinite query over a cursor-paginated list: the first page without a
 * cursor, each next page with the previous page's `next_cursor`, and `hasNextPage` while the
 * server has more. A detail page shows a "Load more" on `hasNextPage`: reading one page of
 * `limit: 100` alone dropped every row past the hundredth without a word.
 */
export function cursorPages<T>(queryKey: QueryKey, page: (cursor?: string) => Promise<CursorPage<T>>) {
  return infiniteQueryOptions({
    queryKey,
    queryFn: ({ pageParam }) => page(pageParam || undefined),
    initialPageParam: "",
    getNextPageParam: (last: CursorPage<T>) => last.next_cursor || undefined,
  });
}

/** The rows of the pages read so far, in order; none before the first page arrives. */
export function pageRows<T>(data: { pages: CursorPage<T>[] } | undefined): T[] {
  return data?.pages.flatMap((p) => p.items) ?? [];
}

/**
 * Read a short list whole, page by page, stopping after `maxPages`; `more` says that the last
 * page read still had a cursor. For lists a control offers in full (the board's pipeline
 * picker): one page alone left every pipeline past the first page out of the picker.
 */
export async function loadPages<T>(
  page: (cursor?: string) => Promise<CursorPage<T>>,
  maxPages: number = 20,
): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let read = 0; read < maxPages; read++) {
    const body = await page(cursor);
    items.push(...body.items);
    if (!body.next_cursor) return { items, more: false };
    cursor = body.next_cursor;
  }
  return { items, more: true };
}

/** What "Load more" needs of an infinite query (`useInfiniteQuery`'s result has it). */
export interface Paged {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  fetchNextPage: () => Promise<unknown>;
}

/**
 * Read the next page, unless there is none or it is already on its way: a second click (a
 * double click, Enter held down) while the page loads joins that read instead of starting
 * another (TanStack's fetchNextPage cancels the read in flight and sends it again).
 */
export function loadNextPage(list: Paged): Promise<unknown> | undefined {
  if (!list.hasNextPage || list.isFetchingNextPage) return undefined;
  return list.fetchNextPage();
}
