"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
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

const KINDS = ["note", "call", "meeting", "email", "system"] as const;
type Kind = (typeof KINDS)[number];

/** One client: its details, contacts and deals, and the timeline of its and its deals' activity. */
function ClientTimeline() {
  const id = useSearchParams().get("id") ?? "";
  const t = useT();
  const locale = useUi((s) => s.locale);
  const [kind, setKind] = useState<Kind | "">("");
  const client = useQuery({
    queryKey: ["deals", "client", id],
    queryFn: async () =>
      ok(await api.GET("/api/v1/deals/clients/{client_id}", { params: { path: { client_id: id } } })),
    enabled: id !== "",
  });
  // the record's other parts are asked for once the record itself is read: a bad or unknown
  // id answered each of them 422 or 404 too, for nothing
  // cursor-paginated, a page at a time: a client with more than a page of contacts or deals
  // gets "Load more" (one page alone hid every row past the hundredth)
  const contacts = useInfiniteQuery({
    ...cursorPages(["deals", "client", id, "contacts"], async (cursor) =>
      ok(
        await api.GET("/api/v1/deals/clients/{client_id}/contacts", {
          params: { path: { client_id: id }, query: { limit: 100, cursor } },
        }),
      ),
    ),
    enabled: client.isSuccess,
  });
  const deals = useInfiniteQuery({
    ...cursorPages(["deals", "client", id, "deals"], async (cursor) =>
      ok(await api.GET("/api/v1/deals/deals", { params: { query: { client: id, limit: 100, cursor } } })),
    ),
    enabled: client.isSuccess,
  });
  const contactRows = pageRows(contacts.data);
  const dealRows = pageRows(deals.data);
  const timeline = useInfiniteQuery({
    queryKey: ["deals", "client", id, "timeline", kind],
    queryFn: async ({ pageParam }) =>
      ok(
        await api.GET("/api/v1/deals/clients/{client_id}/timeline", {
          params: {
            path: { client_id: id },
            query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}), ...(kind ? { kind: [kind] } : {}) },
          },
        }),
      ),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled: client.isSuccess,
  });
  const dealTitle = new Map(dealRows.map((d) => [d.id, d.title]));

  if (!id) return <RecordMissing back="/clients/" label={t("client.back")} />;
  if (!client.data) return <Pending query={client} back={{ href: "/clients/", label: t("client.back") }} />;
  const c = client.data;
  const entries = timeline.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="stack" data-testid="client">
      <Link href="/clients/">← {t("client.back")}</Link>
      <h1>{c.name}</h1>
      <dl className="props">
        <dt>{t("client.kind")}</dt>
        <dd>{c.kind}</dd>
        <dt>{t("client.emails")}</dt>
        <dd>{c.emails.join(", ") || "—"}</dd>
        <dt>{t("client.phones")}</dt>
        <dd>{c.phones.join(", ") || "—"}</dd>
        <dt>{t("client.address")}</dt>
        <dd>{c.address || "—"}</dd>
        <dt>{t("client.tags")}</dt>
        <dd>{c.tags.join(", ") || "—"}</dd>
      </dl>
      <h2>{t("client.contacts")}</h2>
      <ul>
        {contactRows.map((p) => (
          <li key={p.id}>
            {p.name}
            {p.position && `, ${p.position}`} {p.email && <span className="muted">{p.email}</span>}{" "}
            {p.phone && <span className="muted">{p.phone}</span>}
          </li>
        ))}
        {contacts.isSuccess && contactRows.length === 0 && <li className="muted">{t("list.empty")}</li>}
      </ul>
      <ListError query={contacts} />
      <LoadMore list={contacts} label={t("client.contacts")} />
      <h2>{t("client.deals")}</h2>
      <ul>
        {dealRows.map((d) => (
          <li key={d.id}>
            <Link href={`/deal/?id=${d.id}`}>{d.title}</Link>{" "}
            <span className="money">{formatMoney(locale, d.value, d.currency)}</span>{" "}
            <span className="muted">{d.status}</span>
          </li>
        ))}
        {deals.isSuccess && dealRows.length === 0 && <li className="muted">{t("list.empty")}</li>}
      </ul>
      <ListError query={deals} />
      <LoadMore list={deals} label={t("client.deals")} />
      <div className="row">
        <h2>{t("client.timeline")}</h2>
        <span className="spacer" />
        <label className="field small">
          <span>{t("timeline.kind")}</span>
          <select value={kind} onChange={(e) => setKind(e.target.value as Kind | "")}>
            <option value="">{t("timeline.all")}</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ListError query={timeline} />
      <ol className="timeline" data-testid="timeline">
        {entries.map((a) => (
          <li key={a.id}>
            <time dateTime={a.occurred_at}>{formatDateTime(locale, a.occurred_at)}</time>{" "}
            <span className="kind">{a.kind}</span> <strong>{a.subject}</strong>
            {a.deal_id && (
              <>
                {" · "}
                <Link href={`/deal/?id=${a.deal_id}`}>{dealTitle.get(a.deal_id) ?? t("deal.open")}</Link>
              </>
            )}
            {a.body && <p className="muted">{a.body}</p>}
          </li>
        ))}
        {timeline.isSuccess && entries.length === 0 && <li className="muted">{t("list.empty")}</li>}
      </ol>
      <LoadMore list={timeline} label={t("client.timeline")} />
    </section>
  );
}

export default function ClientPage() {
  return (
    <Shell>
      <Suspense>
        <RequireSection screen="deals.clients">
          <ClientTimeline />
        </RequireSection>
      </Suspense>
    </Shell>
  );
}
