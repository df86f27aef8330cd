"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useMemo, type ReactNode } from "react";
import { session } from "@/api/client";
import { Bell } from "@/components/Bell";
import { listHref } from "@/lib/listFilters";
import { useLiveStreams } from "@/lib/useLive";
import { useSignedIn } from "@/lib/useSignedIn";
import { useMe, useViews, viewHref, viewTitle } from "@/lib/queries";
import { useT } from "@/lib/useT";
import { useLists } from "@/store/lists";
import { useUi, type Locale } from "@/store/ui";

/** The frame of every signed-in page: navigation from the enabled plugins' views, live status. */
export function Shell({ children }: { children: ReactNode }) {
  const signedIn = useSignedIn();
  const router = useRouter();
  useEffect(() => {
    if (signedIn === false) router.replace("/login/");
  }, [signedIn, router]);
  if (!signedIn) return null;
  return <SignedInShell>{children}</SignedInShell>;
}

function SignedInShell({ children }: { children: ReactNode }) {
  const t = useT();
  const me = useMe();
  const views = useViews();
  const { locale, live, setLocale, toggleTheme } = useUi();
  // a list opens with the filters it last had in this tab (its own page has "Clear filters")
  const lastQueries = useLists((s) => s.queries);
  const channels = useMemo(
    () => [...new Set((views.data?.views ?? []).map((v) => v.stream).filter(Boolean))].sort(),
    [views.data],
  );
  useLiveStreams(channels);

  return (
    <div className="shell">
      <header className="topbar">
        <Link href="/" className="brand">
          crm2
        </Link>
        <span className={`live live-${live}`} role="status" data-testid="live-status">
          {t(`live.${live}`)}
        </span>
        <span className="spacer" />
        {views.data?.views.some((v) => v.screen === "notifications.feed") && <Bell />}
        <label className="inline">
          <span className="visually-hidden">{t("language")}</span>
          <select
            value={locale}
            onChange={(e) => setLocale(e.target.value as Locale)}
            aria-label={t("language")}
          >
            <option value="en">English</option>
            <option value="ru">Русский</option>
          </select>
        </label>
        <button type="button" className="ghost" onClick={toggleTheme} aria-label={t("theme.toggle")}>
          ◐
        </button>
        {/* the link's name starts with the name it shows (WCAG 2.5.3): an aria-label of just
            "Profile" hid "Maria Manager" from screen readers and from voice control */}
        <Link href="/profile/" className="who">
          {me.data ? (
            <>
              {me.data.full_name || me.data.email}
              <span className="visually-hidden"> ({t("profile")})</span>
            </>
          ) : (
            t("profile")
          )}
        </Link>
        <button
          type="button"
          className="ghost"
          onClick={() => {
            void session.logout();
          }}
        >
          {t("signout")}
        </button>
      </header>
      <nav className="sidebar" aria-label={t("nav.sections")}>
        <Link href="/">{t("nav.home")}</Link>
        {views.data?.views.map((view) => (
          <Link key={view.key} href={listHref(viewHref(view), lastQueries[viewHref(view)] ?? "")} data-view={view.key}>
            {viewTitle(view, locale)}
          </Link>
        ))}
      </nav>
      <main className="content">{children}</main>
    </div>
  );
}
