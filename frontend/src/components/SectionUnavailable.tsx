"use client";

import Link from "next/link";
import type { ReactNode } from "react";
import { Pending } from "@/components/Pending";
import { useViews } from "@/lib/queries";
import { useT } from "@/lib/useT";

/**
 * What a link to a section the user cannot open shows (a bookmark, a link from a notification,
 * another user's URL): its plugin is switched off here, or the user's role lacks its permission.
 * Not "Nothing here yet", which said the section existed and was empty.
 */
export function SectionUnavailable() {
  const t = useT();
  return (
    <section className="stack" data-testid="section-unavailable">
      <p className="error" role="alert">
        {t("section.unavailable")}
      </p>
      <Link href="/">{t("section.home")}</Link>
    </section>
  );
}

/**
 * A record's own screen (a deal, a client, a document) while the section it belongs to is
 * open to the user: the views name `screen` when its plugin is enabled and the user's role
 * includes it. Otherwise the same "not available" as the section itself, instead of the raw
 * 404 (or 403) of a route that is not mounted.
 */
export function RequireSection({ screen, children }: { screen: string; children: ReactNode }) {
  const views = useViews();
  if (!views.data) return <Pending query={views} />;
  if (!views.data.views.some((v) => v.screen === screen)) return <SectionUnavailable />;
  return <>{children}</>;
}
