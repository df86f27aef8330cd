"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { api, ok } from "@/api/client";
import { LoadMore } from "@/components/LoadMore";
import { RequireSection } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { ListError, Pending, RecordMissing } from "@/components/Pending";
import { formatDateTime, formatMoney } from "@/lib/i18n";
import { cursorPages, pageRows } from "@/lib/pages";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

function DealDetail() {
  const id = useSearchParams().get("id") ?? "";
  const t = useT();
  const locale = useUi((s) => s.locale);
  const deal = useQuery({
    queryKey: ["deals", "deal", id],
    queryFn: async () =>
      ok(await api.GET("/api/v1/deals/deals/{deal_id}", { params: { path: { deal_id: id } } })),
    enabled: id !== "",
  });
  // the record's other parts are asked for once the record itself is read: a bad or unknown
  // id answered each of them 422 or 404 too, for nothing
  // cursor-paginated, a page at a time: a long-lived deal gets "Load more" (one page alone
  // hid every move and activity past the hundredth)
  const history = useInfiniteQuery({
    ...cursorPages(["deals", "deal", id, "history"], async (cursor) =>
      ok(
        await api.GET("/api/v1/deals/deals/{deal_id}/history", {
          params: { path: { deal_id: id }, query: { limit: 100, cursor } },
        }),
      ),
    ),
    enabled: deal.isSuccess,
  });
  const activities = useInfiniteQuery({
    ...cursorPages(["deals", "deal", id, "activities"], async (cursor) =>
      ok(await api.GET("/api/v1/deals/activities", { params: { query: { deal: id, limit: 100, cursor } } })),
    ),
    enabled: deal.isSuccess,
  });
  const moves = pageRows(history.data);
  const activityRows = pageRows(activities.data);
  const pipeline = useQuery({
    queryKey: ["deals", "pipeline", deal.data?.pipeline_id],
    queryFn: async () =>
      ok(
        await api.GET("/api/v1/deals/pipelines/{pipeline_id}", {
          params: { path: { pipeline_id: deal.data!.pipeline_id } },
        }),
      ),
    enabled: deal.data !== undefined,
  });
  const stageName = (stageId: string | null | undefined) =>
    pipeline.data?.stages.find((s) => s.id === stageId)?.name ?? "—";

  if (!id) return <RecordMissing back="/deals/" label={t("deal.back")} />;
  if (!deal.data) return <Pending query={deal} back={{ href: "/deals/", label: t("deal.back") }} />;
  const d = deal.data;
  return (
    <section className="stack">
      <Link href="/deals/">← {t("deal.back")}</Link>
      <h1>{d.title}</h1>
      <dl className="props">
        <dt>{t("deal.value")}</dt>
        <dd>{formatMoney(locale, d.value, d.currency)}</dd>
        <dt>{t("deal.stage")}</dt>
        <dd data-testid="deal-stage">{stageName(d.stage_id)}</dd>
        <dt>{t("deal.status")}</dt>
        <dd>{d.status}</dd>
      </dl>
      <h2>{t("deal.history")}</h2>
      <ol className="timeline" data-testid="stage-history">
        {moves.map((move) => (
          <li key={move.id}>
            <time>{formatDateTime(locale, move.moved_at)}</time> {stageName(move.from_stage_id)} →{" "}
            {stageName(move.to_stage_id)}
          </li>
        ))}
        {history.isSuccess && moves.length === 0 && <li className="muted">{t("list.empty")}</li>}
      </ol>
      <ListError query={history} />
      <LoadMore list={history} label={t("deal.history")} />
      <h2>{t("deal.activities")}</h2>
      <ol className="timeline">
        {activityRows.map((a) => (
          <li key={a.id}>
            <time>{formatDateTime(locale, a.occurred_at)}</time> <strong>{a.kind}</strong> {a.subject}
            {a.body && <p className="muted">{a.body}</p>}
          </li>
        ))}
        {activities.isSuccess && activityRows.length === 0 && <li className="muted">{t("list.empty")}</li>}
      </ol>
      <ListError query={activities} />
      <LoadMore list={activities} label={t("deal.activities")} />
    </section>
  );
}

export default function DealPage() {
  return (
    <Shell>
      <Suspense>
        <RequireSection screen="deals.board">
          <DealDetail />
        </RequireSection>
      </Suspense>
    </Shell>
  );
}
