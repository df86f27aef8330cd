"use client";

import Link from "next/link";
import { Pending } from "@/components/Pending";
import { Shell } from "@/components/Shell";
import { listHref } from "@/lib/listFilters";
import { useMe, useViews, viewHref, viewTitle } from "@/lib/queries";
import { useT } from "@/lib/useT";
import { useLists } from "@/store/lists";
import { useUi } from "@/store/ui";

function Home() {
  const t = useT();
  const locale = useUi((s) => s.locale);
  const me = useMe();
  const views = useViews();
  const lastQueries = useLists((s) => s.queries);
  return (
    <section className="stack">
      <h1>{t("home.welcome", { name: me.data?.full_name || me.data?.email || "" })}</h1>
      <h2>{t("home.sections")}</h2>
      {!views.data && <Pending query={views} />}
      <ul className="tiles">
        {views.data?.views.map((view) => (
          <li key={view.key}>
            <Link className="card tile" href={listHref(viewHref(view), lastQueries[viewHref(view)] ?? "")}>
              <strong>{viewTitle(view, locale)}</strong>
              <small>{view.plugin}</small>
            </Link>
          </li>
        ))}
      </ul>
    </section>
  );
}

export default function HomePage() {
  return (
    <Shell>
      <Home />
    </Shell>
  );
}
