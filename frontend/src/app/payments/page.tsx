"use client";

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, ok, origin, session } from "@/api/client";
import { GenericView } from "@/components/GenericView";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { ListError, Pending } from "@/components/Pending";
import { exportQuery } from "@/lib/exports";
import { formatMoney } from "@/lib/i18n";
import { useOneAtATime } from "@/lib/oneAtATime";
import { useCan, useViews } from "@/lib/queries";
import { downloadCsv, saveBlob } from "@/lib/transfer";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

const MONEY = ["due", "paid", "overdue", "refunded"] as const;

/** Balances per currency of what the list shows: every filter the list applied (a policy's, a
 * client's, a period's, a text search's), not only the policy and client. */
function Balances({ filters }: { filters: Record<string, string> }) {
  const t = useT();
  const locale = useUi((s) => s.locale);
  const pick = (name: string) => filters[name] || undefined;
  const scope = {
    policy_id: pick("policy_id"),
    client_id: pick("client_id"),
    q: pick("q"),
    due_from: pick("due_from"),
    due_to: pick("due_to"),
  };
  const balances = useQuery({
    queryKey: ["payments", "balances", scope],
    queryFn: async () => ok(await api.GET("/api/v1/payments/balances", { params: { query: scope } })),
  });
  return (
    <section className="card stack" aria-labelledby="balances-title" data-testid="balances">
      <h2 id="balances-title">{t("payments.balances")}</h2>
      <ListError query={balances} />
      <table>
        <thead>
          <tr>
            <th scope="col">{t("payments.currency")}</th>
            {MONEY.map((m) => (
              <th key={m} scope="col">
                {t(`payments.${m}`)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {balances.data?.balances.map((b) => (
            <tr key={b.currency} data-currency={b.currency}>
              <th scope="row">{b.currency}</th>
              {MONEY.map((m) => (
                <td key={m} className="money">
                  {formatMoney(locale, b[m], b.currency)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {balances.data?.balances.length === 0 && <p className="muted">{t("list.empty")}</p>}
    </section>
  );
}

/** Payments: balances, the generic list (a policy's schedule of instalments when filtered), CSV export. */
function Payments() {
  const t = useT();
  const views = useViews();
  const canExport = useCan("payments:export");
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  // one export at a time: a double click downloaded the file twice
  const [exporting, once] = useOneAtATime();
  if (!views.data) return <Pending query={views} />;
  const view = views.data.views.find((v) => v.screen === "payments.list");
  if (!view) return <SectionUnavailable />;

  async function exportCsv() {
    await once(async () => {
      setError("");
      try {
        const transfer = { fetch: session.fetch, baseUrl: origin };
        const { name, blob } = await downloadCsv(transfer, "/api/v1/payments/payments/export.csv", exportQuery(filters), "payments.csv");
        saveBlob(name, blob);
      } catch (err) {
        setError(err instanceof Error ? err.message : t("error.generic"));
      }
    });
  }

  return (
    <div className="stack">
      <Balances filters={filters} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <GenericView
        view={view}
        extras={{
          onFilters: setFilters,
          toolbar: canExport ? (
            <button type="button" className="ghost" disabled={exporting} onClick={() => void exportCsv()}>
              {t("payments.export")}
            </button>
          ) : null,
        }}
      />
    </div>
  );
}

export default function PaymentsPage() {
  return (
    <Shell>
      <Payments />
    </Shell>
  );
}
