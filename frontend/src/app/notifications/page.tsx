"use client";

import Link from "next/link";
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { getJson, sendJson } from "@/api/client";
import { UNREAD_KEY } from "@/components/Bell";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { LoadMore } from "@/components/LoadMore";
import { ListError, Pending } from "@/components/Pending";
import { formatDateTime } from "@/lib/i18n";
import { markReadOptimistically, safeLink, type FeedPage } from "@/lib/notifications";
import { useOneAtATime } from "@/lib/oneAtATime";
import { useViews } from "@/lib/queries";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

/** The caller's notification feed: newest first, unread ones marked, read one or all. */
function Feed() {
  const t = useT();
  const locale = useUi((s) => s.locale);
  const queryClient = useQueryClient();
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [error, setError] = useState("");
  const key = ["notifications", "feed", unreadOnly];
  const feed = useInfiniteQuery({
    queryKey: key,
    queryFn: async ({ pageParam }) =>
      (await getJson("/api/v1/notifications/feed", {
        limit: "50",
        unread_only: String(unreadOnly),
        ...(pageParam ? { cursor: pageParam } : {}),
      })) as FeedPage,
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = feed.data?.pages.flatMap((p) => p.items) ?? [];

  // one mark at a time: a double click sent the same POST twice
  const [reading, once] = useOneAtATime();

  async function read(ids: string[] | null) {
    await once(async () => {
      setError("");
      const at = new Date().toISOString();
      const undo = markReadOptimistically(queryClient, key, ids, at);
      try {
        const answer =
          ids === null
            ? await sendJson("POST", "/api/v1/notifications/feed/read-all", {})
            : await sendJson("POST", "/api/v1/notifications/feed/read", { ids });
        const { unread } = (await answer.json()) as { unread: number };
        queryClient.setQueryData(UNREAD_KEY, { unread });
      } catch (err) {
        undo();
        setError(err instanceof Error ? err.message : t("error.generic"));
      }
      await queryClient.invalidateQueries({ queryKey: ["notifications"] });
    });
  }

  return (
    <section className="stack" data-testid="feed">
      <div className="row">
        <h1>{t("notifications.title")}</h1>
        <span className="spacer" />
        <label className="row">
          <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly(e.target.checked)} />
          {t("notifications.unreadOnly")}
        </label>
        <button type="button" className="ghost" disabled={reading} onClick={() => void read(null)}>
          {t("notifications.readAll")}
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <ListError query={feed} />
      <ol className="feed">
        {items.map((n) => {
          const link = safeLink(n.link);
          return (
            <li key={n.id} className={n.read_at ? "read" : "unread"} data-notification={n.id}>
              <div className="row">
                <strong>{link ? <Link href={link}>{n.title}</Link> : n.title}</strong>
                <span className="spacer" />
                <time className="muted" dateTime={n.created_at}>
                  {formatDateTime(locale, n.created_at)}
                </time>
                {!n.read_at && (
                  <button
                    type="button"
                    className="ghost"
                    aria-label={t("notifications.markRead", { title: n.title })}
                    disabled={reading}
                    onClick={() => void read([n.id])}
                  >
                    {t("notifications.read")}
                  </button>
                )}
              </div>
              {n.body && <p className="muted">{n.body}</p>}
            </li>
          );
        })}
      </ol>
      {feed.isSuccess && items.length === 0 && <p className="muted">{t("list.empty")}</p>}
      <LoadMore list={feed} label={t("notifications.title")} />
    </section>
  );
}

/** The feed, while notifications is enabled (a deep link otherwise says why not). */
function Notifications() {
  const views = useViews();
  if (!views.data) return <Pending query={views} />;
  if (!views.data.views.some((v) => v.screen === "notifications.feed")) return <SectionUnavailable />;
  return <Feed />;
}

export default function NotificationsPage() {
  return (
    <Shell>
      <Notifications />
    </Shell>
  );
}
