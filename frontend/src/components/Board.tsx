"use client";

import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState, type DragEvent, type FormEvent } from "react";
import { api, ok, ProblemError } from "@/api/client";
import { Pending } from "@/components/Pending";
import { BOARD_PAGE_SIZE, buildColumns, columnFigures, loadBoard, moveDeal, optimisticMove, type BoardData } from "@/lib/board";
import { formatCount, formatMoney } from "@/lib/i18n";
import { loadPages } from "@/lib/pages";
import { useCan, type DealPublic, type PipelinePublic } from "@/lib/queries";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

/** The board's filters (query parameters of GET /deals/deals); empty ones are left out. */
interface BoardFilters {
  q: string;
  status: "" | "open" | "won" | "lost";
}

const NO_FILTERS: BoardFilters = { q: "", status: "" };

async function loadDeals(pipeline: string, filters: BoardFilters): Promise<BoardData<DealPublic>> {
  return loadBoard(async (cursor) =>
    ok(
      await api.GET("/api/v1/deals/deals", {
        params: {
          query: {
            pipeline,
            limit: BOARD_PAGE_SIZE,
            sort: "-updated_at",
            cursor,
            ...(filters.q ? { q: filters.q } : {}),
            ...(filters.status ? { status: filters.status } : {}),
          },
        },
      }),
    ),
  );
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
    // every pipeline, a page at a time: the first page alone left the rest out of the picker
    queryFn: () =>
      loadPages(async (cursor) =>
        ok(await api.GET("/api/v1/deals/pipelines", { params: { query: { limit: 100, cursor } } })),
      ),
  });
  const pipeline: PipelinePublic | undefined = useMemo(() => {
    const items = pipelines.data?.items ?? [];
    return items.find((p) => p.id === chosen) ?? items.find((p) => p.is_default) ?? items[0];
  }, [pipelines.data, chosen]);
  const [filters, setFilters] = useState<BoardFilters>(NO_FILTERS);
  const boardKey = ["deals", "board", pipeline?.id ?? "", filters];
  const board = useQuery({
    queryKey: boardKey,
    queryFn: () => loadDeals(pipeline!.id, filters),
    enabled: pipeline !== undefined,
  });
  const deals = board.data?.deals;
  const more = board.data?.more ?? false;
  // a board cut off at its cap counts only its cards: the summary (one aggregate query) has the
  // true figures per stage; it knows no title search (lib/board.ts, columnFigures)
  const summary = useQuery({
    queryKey: ["deals", "board-summary", pipeline?.id ?? ""],
    queryFn: async () =>
      ok(
        await api.GET("/api/v1/deals/pipelines/{pipeline_id}/summary", {
          params: { path: { pipeline_id: pipeline!.id } },
        }),
      ),
    enabled: pipeline !== undefined && more && !filters.q,
  });

  const optimistic = optimisticMove(queryClient, boardKey);
  const move = useMutation({
    // a live stage change moves the card before the refetch brings its new version: a 412
    // then reads the card and moves it once more (lib/board.ts, moveDeal)
    mutationFn: async (vars: { deal: DealPublic; stageId: string; lostReason?: string }) =>
      moveDeal(vars.deal, vars.stageId, {
        move: async (stageId, version) =>
          ok(
            await api.POST("/api/v1/deals/deals/{deal_id}/move", {
              params: { path: { deal_id: vars.deal.id }, header: { "If-Match": `"v${version}"` } },
              body: { stage_id: stageId, lost_reason: vars.lostReason ?? null },
            }),
          ),
        read: async () =>
          ok(await api.GET("/api/v1/deals/deals/{deal_id}", { params: { path: { deal_id: vars.deal.id } } })),
      }),
    onMutate: async (vars) => {
      setError("");
      return optimistic.onMutate(vars);
    },
    onSuccess: (updated) => {
      queryClient.setQueryData<BoardData<DealPublic>>(boardKey, (current) =>
        current && { ...current, deals: current.deals.map((d) => (d.id === updated.id ? updated : d)) },
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
  const columns = buildColumns(stages, deals ?? []).map((column) => ({
    ...column,
    figures: columnFigures(column, more, filters, summary.data?.stages, (n) => formatCount(locale, n)),
  }));
  const partial = columns.some((column) => column.figures.partial);

  function requestMove(deal: DealPublic, stageId: string) {
    if (stageId === deal.stage_id) return;
    const stage = stages.find((s) => s.id === stageId);
    if (stage?.kind === "lost") setPendingLost({ deal, stageId });
    else move.mutate({ deal, stageId });
  }

  function onDrop(event: DragEvent<HTMLElement>, stageId: string) {
    event.preventDefault();
    const id = event.dataTransfer.getData("text/x-crm2-deal");
    const deal = deals?.find((d) => d.id === id);
    if (deal) requestMove(deal, stageId);
  }

  function confirmLost(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!pendingLost) return;
    const reason = String(new FormData(event.currentTarget).get("reason") ?? "");
    move.mutate({ ...pendingLost, lostReason: reason });
    setPendingLost(null);
  }

  function applyFilters(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const status = String(form.get("status") ?? "");
    setFilters({
      q: String(form.get("q") ?? "").trim(),
      status: status === "open" || status === "won" || status === "lost" ? status : "",
    });
  }

  // a failed read of the pipelines says so (with Try again) instead of an empty board
  if (!pipelines.data) return <Pending query={pipelines} />;
  if (!pipeline) {
    return (
      <section className="stack">
        <h1>{t("board.pipeline")}</h1>
        <p className="muted">{t("board.noPipeline")}</p>
      </section>
    );
  }

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
      <form className="row filters" onSubmit={applyFilters} aria-label={t("list.filter")}>
        <label className="field">
          <span>{t("board.search")}</span>
          <input name="q" type="search" maxLength={200} defaultValue={filters.q} />
        </label>
        <label className="field">
          <span>{t("deal.status")}</span>
          <select name="status" defaultValue={filters.status}>
            <option value="">{t("board.anyStatus")}</option>
            <option value="open">open</option>
            <option value="won">won</option>
            <option value="lost">lost</option>
          </select>
        </label>
        <button type="submit">{t("list.filter")}</button>
      </form>
      {board.data?.more && (
        <p className="notice" role="status" data-testid="board-truncated">
          {t(partial ? "board.truncatedPartial" : "board.truncated", {
            count: formatCount(locale, board.data.deals.length),
          })}
        </p>
      )}
      {board.isError && (
        <p className="error" role="alert">
          {board.error.message}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {pendingLost && (
        <form
          className="card row"
          onSubmit={confirmLost}
          aria-label={t("board.lostReason")}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.preventDefault();
              setPendingLost(null);
            }
          }}
        >
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
              <span className="count">{column.figures.count}</span>
              <div className="totals">
                {Object.entries(column.figures.totals).map(([currency, total]) => (
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
