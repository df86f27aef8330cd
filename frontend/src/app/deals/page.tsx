"use client";

import { Board } from "@/components/Board";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { Pending } from "@/components/Pending";
import { useViews } from "@/lib/queries";

/** The board, while deals is enabled and the user may read it (a deep link otherwise says why not). */
function Deals() {
  const views = useViews();
  if (!views.data) return <Pending query={views} />;
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
