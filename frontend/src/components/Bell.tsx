"use client";

import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { getJson } from "@/api/client";
import { badgeText } from "@/lib/notifications";
import { useT } from "@/lib/useT";

export const UNREAD_KEY = ["notifications", "unread"] as const;

/**
 * The header's bell with the unread count. Its query is keyed by the `notifications`
 * channel, so every event of that SSE stream (a new notification, a read elsewhere)
 * refetches it: the count is live without polling.
 */
export function Bell() {
  const t = useT();
  const unread = useQuery({
    queryKey: UNREAD_KEY,
    queryFn: async () => (await getJson("/api/v1/notifications/feed/unread-count")) as { unread: number },
  });
  const count = unread.data?.unread ?? 0;
  const badge = badgeText(count);
  return (
    <Link
      href="/notifications/"
      className="bell"
      data-testid="bell"
      aria-label={t("notifications.bell", { count: String(count) })}
    >
      <span aria-hidden="true">🔔</span>
      {badge && (
        <span className="badge" data-testid="unread">
          {badge}
        </span>
      )}
    </Link>
  );
}
