/** The notification bell and feed: pure helpers (kept out of the components for Vitest). */

import type { InfiniteData, QueryClient, QueryKey } from "@tanstack/react-query";

export interface Notification {
  id: string;
  title: string;
  body: string;
  link: string | null;
  event_type: string;
  subject: string;
  read_at: string | null;
  created_at: string;
}

export interface FeedPage {
  items: Notification[];
  next_cursor?: string | null;
}

/** What the bell's badge says: nothing at 0, the count up to 99, then "99+". */
export function badgeText(unread: number): string {
  if (!Number.isFinite(unread) || unread <= 0) return "";
  return unread > 99 ? "99+" : String(Math.floor(unread));
}

/** The cached feed with these notifications (all when `ids` is null) marked read at `at`. */
export function markedRead(pages: FeedPage[], ids: string[] | null, at: string): FeedPage[] {
  const wanted = ids === null ? null : new Set(ids);
  return pages.map((page) => ({
    ...page,
    items: page.items.map((n) =>
      n.read_at === null && (wanted === null || wanted.has(n.id)) ? { ...n, read_at: at } : n,
    ),
  }));
}

/**
 * A notification's link, only when it stays inside the console (no other origin, no scheme).
 * Control characters and spaces are refused too: a browser drops tabs and newlines from a
 * URL, so "/<tab>/evil.example" would open "//evil.example", another host.
 */
export function safeLink(link: string | null): string | null {
  if (!link || !link.startsWith("/") || link.startsWith("//") || link.includes("\\")) return null;
  if (/[\u0000-\u0020\u007f]/.test(link)) return null;
  return link;
}

/**
 * Mark notifications read in the cached feed at `key` at once; the returned function puts back
 * exactly those that this marked (a refused or failed call must not leave them looking read,
 * even when the refetch that follows fails too).
 */
export function markReadOptimistically(client: QueryClient, key: QueryKey, ids: string[] | null, at: string): () => void {
  const marked = new Set<string>();
  client.setQueryData<InfiniteData<FeedPage>>(key, (data) => {
    if (!data) return data;
    for (const page of data.pages) {
      for (const n of page.items) if (n.read_at === null && (ids === null || ids.includes(n.id))) marked.add(n.id);
    }
    return { ...data, pages: markedRead(data.pages, ids, at) };
  });
  return () =>
    client.setQueryData<InfiniteData<FeedPage>>(key, (data) =>
      data
        ? {
            ...data,
            pages: data.pages.map((page) => ({
              ...page,
              items: page.items.map((n) => (marked.has(n.id) && n.read_at === at ? { ...n, read_at: null } : n)),
            })),
          }
        : data,
    );
}
