"use client";

import Link from "next/link";
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
