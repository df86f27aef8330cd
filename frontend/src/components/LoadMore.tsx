"use client";

import { loadNextPage, type Paged } from "@/lib/pages";
import { useT } from "@/lib/useT";

/**
 * "Load more" under a cursor-paginated list while the server holds more rows (none after the
 * last page); disabled while the next page loads, so that a double click reads it once. Every
 * paged list uses this one button (the copies pages once had were never disabled).
 */
export function LoadMore({ list, label }: { list: Paged; label?: string }) {
  const t = useT();
  if (!list.hasNextPage) return null;
  return (
    <button
      type="button"
      className="ghost"
      aria-label={label ? `${t("list.more")}: ${label}` : undefined}
      aria-busy={list.isFetchingNextPage || undefined}
      disabled={list.isFetchingNextPage}
      onClick={() => void loadNextPage(list)}
    >
      {t("list.more")}
    </button>
  );
}
