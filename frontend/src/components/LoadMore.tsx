"use client";

import { useT } from "@/lib/useT";

interface Paged {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  fetchNextPage: () => Promise<unknown>;
}

/** "Load more" under a cursor-paginated list while the server holds more rows (none after the last page). */
export function LoadMore({ list, label }: { list: Paged; label?: string }) {
  const t = useT();
  if (!list.hasNextPage) return null;
  return (
    <button
      type="button"
      className="ghost"
      aria-label={label ? `${t("list.more")}: ${label}` : undefined}
      disabled={list.isFetchingNextPage}
      onClick={() => void list.fetchNextPage()}
    >
      {t("list.more")}
    </button>
  );
}
