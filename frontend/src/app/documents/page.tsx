"use client";

import Link from "next/link";
import { GenericView } from "@/components/GenericView";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { Pending } from "@/components/Pending";
import { cellText } from "@/lib/forms";
import { useViews } from "@/lib/queries";
import { useT } from "@/lib/useT";

/** The documents plugin's list (generic), each row opening its file screen. */
function Documents() {
  const t = useT();
  const views = useViews();
  if (!views.data) return <Pending query={views} />;
  const view = views.data.views.find((v) => v.screen === "documents.list");
  if (!view) return <SectionUnavailable />;
  return (
    <GenericView
      view={view}
      extras={{
        rowExtraLabel: t("documents.open"),
        rowExtra: (item) => (
          <Link
            href={`/document/?id=${encodeURIComponent(String(item.id))}`}
            aria-label={t("documents.openOf", { title: cellText(item.title) })}
          >
            {t("documents.open")}
          </Link>
        ),
      }}
    />
  );
}

export default function DocumentsPage() {
  return (
    <Shell>
      <Documents />
    </Shell>
  );
}
