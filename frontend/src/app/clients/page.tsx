"use client";

import Link from "next/link";
import { GenericView } from "@/components/GenericView";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { Pending } from "@/components/Pending";
import { cellText } from "@/lib/forms";
import { useCan, useViews } from "@/lib/queries";
import { useT } from "@/lib/useT";

/** Deals' clients: the generic list, plus each client's timeline and the CSV import (the list exports itself). */
function Clients() {
  const t = useT();
  const views = useViews();
  const canImport = useCan("deals:import");
  if (!views.data) return <Pending query={views} />;
  const view = views.data.views.find((v) => v.screen === "deals.clients");
  if (!view) return <SectionUnavailable />;
  return (
    <GenericView
      view={view}
      extras={{
        rowExtraLabel: t("client.timeline"),
        rowExtra: (item) => (
          <Link
            href={`/client/?id=${encodeURIComponent(String(item.id))}`}
            aria-label={t("client.timelineOf", { name: cellText(item.name) })}
          >
            {t("client.timeline")}
          </Link>
        ),
        toolbar: canImport ? (
            <Link className="button ghost" href="/clients/csv/">
              {t("csv.open")}
            </Link>
          ) : null,
      }}
    />
  );
}

export default function ClientsPage() {
  return (
    <Shell>
      <Clients />
    </Shell>
  );
}
