"use client";

import { useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { GenericView } from "@/components/GenericView";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { Pending } from "@/components/Pending";
import { useViews } from "@/lib/queries";

function ViewByKey() {
  const key = useSearchParams().get("key") ?? "";
  const views = useViews();
  if (!views.data) return <Pending query={views} />;
  const view = views.data.views.find((v) => v.key === key);
  if (!view) return <SectionUnavailable />;
  return <GenericView key={view.key} view={view} />;
}

export default function ViewPage() {
  return (
    <Shell>
      <Suspense>
        <ViewByKey />
      </Suspense>
    </Shell>
  );
}
