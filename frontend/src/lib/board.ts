/** The pipeline board's arithmetic, kept apart from React so that it is unit-tested. */

import type { QueryClient, QueryKey } from "@tanstack/react-query";
import { ProblemError } from "@/api/client";

export interface BoardDeal {
  id: string;
  title: string;
  stage_id: string;
  value: string;
  currency: string;
  status: string;
  client_id: string;
  updated_at: string;
}

export interface StageLike {
  id: string;
  name: string;
  position: number;
  /** open, won or lost: a deal's status is its stage's kind */
  kind?: string;
}

export interface Column<D extends BoardDeal> {
  stage: StageLike;
  deals: D[];
  /** currency → total in minor-unit-safe decimal string */
  totals: Record<string, string>;
}

/** Add decimal strings exactly (crm2 sends money as strings such as "1234.50"). */
export function addDecimal(a: string, b: string): string {
  const scale = Math.max(decimals(a), decimals(b));
  const sum = toScaled(a, scale) + toScaled(b, scale);
  const negative = sum < 0n;
  const digits = (negative ? -sum : sum).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale ? "." + digits.slice(digits.length - scale) : "";
  return (negative ? "-" : "") + whole + fraction;
}

function decimals(value: string): number {
  const dot = value.indexOf(".");
  return dot < 0 ? 0 : value.length - dot - 1;
}

function toScaled(value: string, scale: number): bigint {
  const negative = value.startsWith("-");
  const [whole = "0", fraction = ""] = value.replace(/^[-+]/, "").split(".");
  const scaled = BigInt(whole + fraction.padEnd(scale, "0"));
  return negative ? -scaled : scaled;
}

export function buildColumns<D extends BoardDeal>(stages: StageLike[], deals: D[]): Column<D>[] {
  const ordered = [...stages].sort((a, b) => a.position - b.position);
  return ordered.map((stage) => {
    const inStage = deals.filter((deal) => deal.stage_id === stage.id);
    const totals: Record<string, string> = {};
    for (const deal of inStage) totals[deal.currency] = addDecimal(totals[deal.currency] ?? "0", deal.value);
    return { stage, deals: inStage, totals };
  });
}

/**
 * The deals list after a live `deals.deal.stage_changed` (or a move of ours): the card moves
 * before any refetch. With the deal's `version` after the move (an optional field of the event:
 * older events lack it), the card takes that version too, so a move made before the refetch arrives sends the
 * right If-Match instead of meeting a 412 and reading the card again; and an event older than
 * the card held (its version not above the card's) changes nothing, so a late event never
 * puts a card back where it was. Without a version the card only moves (the 412 path of
 * moveDeal still covers the gap).
 */
export function applyStageChange<D extends BoardDeal>(
  deals: D[],
  dealId: string,
  toStageId: string,
  version?: number,
): D[] {
  return deals.map((deal) => {
    if (deal.id !== dealId) return deal;
    if (version === undefined) return { ...deal, stage_id: toStageId };
    const held = (deal as { version?: unknown }).version;
    if (typeof held === "number" && held >= version) return deal;
    return { ...deal, stage_id: toStageId, version };
  });
}

/** What a live `deals.deal.stage_changed` says of a card: where it went, and its version when given. */
export interface StageChange {
  dealId: string;
  toStageId: string;
  version?: number;
}

/** Read a `deals.deal.stage_changed` envelope; a missing or malformed `version` is left out. */
export function stageChangeOf(event: { subject: string; data: Record<string, unknown> }): StageChange {
  const version = event.data.version;
  return {
    dealId: event.subject,
    toStageId: String(event.data.to_stage_id),
    ...(typeof version === "number" && Number.isInteger(version) && version > 0 ? { version } : {}),
  };
}

/** The board as cached: the deals loaded, and whether the server holds more than the board shows. */
export interface BoardData<D extends BoardDeal = BoardDeal> {
  deals: D[];
  more: boolean;
}

/** Deals per page, and pages at most: a board beyond 2,000 cards wants filters, not more loading. */
export const BOARD_PAGE_SIZE = 200;
export const BOARD_MAX_PAGES = 10;

/**
 * Load a pipeline's deals page by page, stopping at BOARD_MAX_PAGES. `more` says that the last
 * page read still had a cursor: the board then shows fewer deals than there are and must say so
 * (it showed the first 2,000 as if they were all).
 */
export async function loadBoard<D extends BoardDeal>(
  page: (cursor?: string) => Promise<{ items: D[]; next_cursor?: string | null }>,
  maxPages: number = BOARD_MAX_PAGES,
): Promise<BoardData<D>> {
  const deals: D[] = [];
  let cursor: string | undefined;
  for (let read = 0; read < maxPages; read++) {
    const body = await page(cursor);
    deals.push(...body.items);
    if (!body.next_cursor) return { deals, more: false };
    cursor = body.next_cursor;
  }
  return { deals, more: true };
}

/** A stage's figures from GET …/pipelines/{id}/summary: every deal the user sees, not only the loaded cards. */
export interface StageFigures {
  stage_id: string;
  count: number;
  totals: { currency: string; value: string }[];
}

/** What a column's header shows; `partial`: the figures cover only the loaded cards ("N+"). */
export interface ColumnFigures {
  count: string;
  totals: Record<string, string>;
  partial: boolean;
}

/**
 * A column's count and totals. A board holding every deal (`more` false) counts and sums its
 * cards. One cut off at its cap holds only the most recent cards: the server's summary (one
 * aggregate query) then gives the true figures where it applies — without a title search (the
 * summary knows no `q`), and with a status filter only in stages of that kind (a deal's status
 * is its stage's kind: the other columns are empty, their loaded figures exact). Anywhere else,
 * and while the summary is not there, the loaded cards' figures, marked partial ("N+").
 */
export function columnFigures<D extends BoardDeal>(
  column: Column<D>,
  more: boolean,
  filters: { q: string; status: string },
  summary: StageFigures[] | undefined,
  format: (n: number) => string = String,
): ColumnFigures {
  const loaded = { count: format(column.deals.length), totals: column.totals, partial: false };
  if (!more) return loaded;
  if (filters.status && column.stage.kind !== undefined && column.stage.kind !== filters.status) return loaded;
  const figures = filters.q ? undefined : summary?.find((s) => s.stage_id === column.stage.id);
  if (!figures) return { ...loaded, count: `${loaded.count}+`, partial: true };
  const totals: Record<string, string> = {};
  for (const total of figures.totals) totals[total.currency] = total.value;
  return { count: format(figures.count), totals, partial: false };
}

/** The cached board after a deal moved (a live event, an optimistic move, or its undo). */
export function moveOnBoard<D extends BoardDeal>(
  board: BoardData<D> | undefined,
  dealId: string,
  toStageId: string,
  version?: number,
): BoardData<D> | undefined {
  return board && { ...board, deals: applyStageChange(board.deals, dealId, toStageId, version) };
}

/** What the cache needs to know of a move: enough to move the card there and back. */
export interface MoveVars {
  deal: Pick<BoardDeal, "id" | "stage_id">;
  stageId: string;
}

/**
 * A move's optimistic side (TanStack Query mutation callbacks) on the board cached at `key`:
 * the card moves at once; a refused move (412, 403, 422, the network down) puts it back in
 * its column before the board is refetched, so a failed move never looks done, even when
 * the refetch fails too.
 */
export function optimisticMove(client: QueryClient, key: QueryKey) {
  return {
    onMutate: async ({ deal, stageId }: MoveVars) => {
      await client.cancelQueries({ queryKey: key });
      client.setQueryData<BoardData>(key, (board) => moveOnBoard(board, deal.id, stageId));
      return { key };
    },
    onError: (_error: unknown, { deal }: MoveVars, context: { key: QueryKey } | undefined) => {
      const at = context?.key ?? key;
      client.setQueryData<BoardData>(at, (board) => moveOnBoard(board, deal.id, deal.stage_id));
      void client.invalidateQueries({ queryKey: at });
    },
  };
}

/** How a move reaches the server: the move itself with its If-Match version, and a read of the card. */
export interface MoveIo<D> {
  move: (stageId: string, version: number) => Promise<D>;
  read: () => Promise<D>;
}

/**
 * Move a deal with the version the board holds; on a 412, read the card and, when it still
 * stands in the stage shown, move it once more with the version read. A live
 * `deals.deal.stage_changed` moves the card on screen before the refetch arrives, and its
 * data may carry no version (an optional field; lib/useLive.ts applies it when there): a move made in that
 * gap sent the old version and was refused
 * although the user moved the card from where it really was. A card someone has put in
 * another stage meanwhile is not moved over their move (the 412 stands), and one already in
 * the stage asked for needs no second move.
 */
export async function moveDeal<D extends Pick<BoardDeal, "stage_id"> & { version: number }>(
  deal: Pick<BoardDeal, "stage_id"> & { version: number },
  stageId: string,
  io: MoveIo<D>,
): Promise<D> {
  try {
    return await io.move(stageId, deal.version);
  } catch (error) {
    if (!(error instanceof ProblemError && error.status === 412)) throw error;
    const fresh = await io.read();
    if (fresh.stage_id === stageId) return fresh;
    if (fresh.stage_id !== deal.stage_id || fresh.version === deal.version) throw error;
    return io.move(stageId, fresh.version);
  }
}
