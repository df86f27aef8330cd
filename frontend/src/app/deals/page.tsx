"use client";

import { Board } from "@/components/Board";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { useViews } from "@/lib/queries";
import { useT } from "@/lib/useT";

/** The board, while deals is enabled and the user may read it (a deep link otherwise says why not). */
function Deals() {
  const t = useT();
  const views = useViews();
  if (!views.data) return <p>{t("loading")}</p>;
  if (!views.data.views.some((v) => v.screen === "deals.board")) return <SectionUnavailable />;
  return <Board />;
}

export default function DealsPage() {
  return (
    <Shell>
      <Deals />
    </Shell>
  );
}
