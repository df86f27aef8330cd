"use client";

import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState, type DragEvent, type FormEvent } from "react";
import { api, ok, ProblemError } from "@/api/client";
import { buildColumns, optimisticMove } from "@/lib/board";
import { formatMoney } from "@/lib/i18n";
import { useCan, type DealPublic, type PipelinePublic } from "@/lib/queries";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

/** Pages of the board fetched at most (×200 deals): a board beyond that wants filters. */
const MAX_PAGES = 10;

async function loadDeals(pipeline: string): Promise<DealPublic[]> {
  const deals: DealPublic[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const body = await ok(
      await api.GET("/api/v1/deals/deals", {
        params: { query: { pipeline, limit: 200, sort: "-updated_at", cursor } },
      }),
    );
    deals.push(...body.items);
    if (!body.next_cursor) break;
    cursor = body.next_cursor;
  }
  return deals;
}

interface PendingLost {
  deal: DealPublic;
  stageId: string;
}

export function Board() {
  const t = useT();
  const locale = useUi((s) => s.locale);
  const queryClient = useQueryClient();
  const [chosen, setChosen] = useState<string>("");
  const [pendingLost, setPendingLost] = useState<PendingLost | null>(null);
  const [error, setError] = useState("");
  // moving a deal needs deals:write (a viewer reads the board): no control the server refuses
  const canMove = useCan("deals:write");

  const pipelines = useQuery({
    queryKey: ["deals", "pipelines"],
    queryFn: async () => ok(await api.GET("/api/v1/deals/pipelines", { params: { query: { limit: 50 } } })),
  });
  const pipeline: PipelinePublic | undefined = useMemo(() => {
    const items = pipelines.data?.items ?? [];
    return items.find((p) => p.id === chosen) ?? items.find((p) => p.is_default) ?? items[0];
  }, [pipelines.data, chosen]);
  const boardKey = ["deals", "board", pipeline?.id ?? ""];
  const deals = useQuery({
    queryKey: boardKey,
    queryFn: () => loadDeals(pipeline!.id),
    enabled: pipeline !== undefined,
  });

  const optimistic = optimisticMove(queryClient, boardKey);
  const move = useMutation({
    mutationFn: async (vars: { deal: DealPublic; stageId: string; lostReason?: string }) =>
      ok(
        await api.POST("/api/v1/deals/deals/{deal_id}/move", {
          params: {
            path: { deal_id: vars.deal.id },
            header: { "if-match": `"v${vars.deal.version}"` },
          },
          body: { stage_id: vars.stageId, lost_reason: vars.lostReason ?? null },
        }),
      ),
    onMutate: async (vars) => {
      setError("");
      return optimistic.onMutate(vars);
    },
    onSuccess: (updated) => {
      queryClient.setQueryData<DealPublic[]>(boardKey, (all) =>
        all?.map((d) => (d.id === updated.id ? updated : d)),
      );
    },
    onError: (err, vars, context) => {
      optimistic.onError(err, vars, context);
      setError(
        err instanceof ProblemError && err.status === 412
          ? t("error.conflict")
          : err instanceof Error
            ? err.message
            : t("error.generic"),
      );
    },
  });

  const stages = pipeline?.stages ?? [];
  const columns = buildColumns(stages, deals.data ?? []);

  function requestMove(deal: DealPublic, stageId: string) {
    if (stageId === deal.stage_id) return;
    const stage = stages.find((s) => s.id === stageId);
    if (stage?.kind === "lost") setPendingLost({ deal, stageId });
    else move.mutate({ deal, stageId });
  }

  function onDrop(event: DragEvent<HTMLElement>, stageId: string) {
    event.preventDefault();
    const id = event.dataTransfer.getData("text/x-crm2-deal");
    const deal = deals.data?.find((d) => d.id === id);
    if (deal) requestMove(deal, stageId);
  }

  function confirmLost(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!pendingLost) return;
    const reason = String(new FormData(event.currentTarget).get("reason") ?? "");
    move.mutate({ ...pendingLost, lostReason: reason });
    setPendingLost(null);
  }

  if (pipelines.isPending) return <p>{t("loading")}</p>;

  return (
    <section className="stack">
      <div className="row">
        <h1>{t("board.pipeline")}</h1>
        <select
          aria-label={t("board.pipeline")}
          value={pipeline?.id ?? ""}
          onChange={(e) => setChosen(e.target.value)}
        >
          {pipelines.data?.items.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {pendingLost && (
        <form className="card row" onSubmit={confirmLost} aria-label={t("board.lostReason")}>
          <label className="field grow">
            <span>{t("board.lostReason")}</span>
            <input name="reason" required maxLength={1000} autoFocus />
          </label>
          <button type="submit">{t("form.save")}</button>
          <button type="button" className="ghost" onClick={() => setPendingLost(null)}>
            {t("form.cancel")}
          </button>
        </form>
      )}
      <div className="board" data-testid="board">
        {columns.map((column) => (
          <section
            key={column.stage.id}
            className="column"
            data-stage={column.stage.name}
            aria-label={column.stage.name}
            onDragOver={(e) => e.preventDefault()}
            onDrop={(e) => onDrop(e, column.stage.id)}
          >
            <header className="column-head">
              <h2>{column.stage.name}</h2>
              <span className="count">{column.deals.length}</span>
              <div className="totals">
                {Object.entries(column.totals).map(([currency, total]) => (
                  <span key={currency}>{formatMoney(locale, total, currency)}</span>
                ))}
              </div>
            </header>
            {column.deals.length === 0 && <p className="muted">{t("board.empty")}</p>}
            {column.deals.map((deal) => (
              <article
                key={deal.id}
                className="deal-card"
                draggable={canMove}
                data-deal={deal.id}
                data-owner={deal.owner_id}
                onDragStart={(e) => e.dataTransfer.setData("text/x-crm2-deal", deal.id)}
              >
                <Link href={`/deal/?id=${deal.id}`} className="deal-title">
                  {deal.title}
                </Link>
                <span className="money">{formatMoney(locale, deal.value, deal.currency)}</span>
                <label className="field small">
                  <span className="visually-hidden">{t("board.moveTo")}</span>
                  <select
                    aria-label={`${t("board.moveTo")}: ${deal.title}`}
                    value={deal.stage_id}
                    disabled={!canMove}
                    onChange={(e) => requestMove(deal, e.target.value)}
                  >
                    {stages.map((s) => (
                      <option key={s.id} value={s.id}>
                        {s.name}
                      </option>
                    ))}
                  </select>
                </label>
              </article>
            ))}
          </section>
        ))}
      </div>
    </section>
  );
}
