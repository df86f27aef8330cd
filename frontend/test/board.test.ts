import { MutationObserver, QueryClient, QueryObserver } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { addDecimal, applyStageChange, buildColumns, loadBoard, optimisticMove, type BoardData, type BoardDeal, type MoveVars } from "@/lib/board";

const deal = (id: string, stage: string, value: string, currency = "EUR"): BoardDeal => ({
  id,
  title: id,
  stage_id: stage,
  value,
  currency,
  status: "open",
  client_id: "c",
  updated_at: "2026-01-01T00:00:00Z",
});

describe("board", () => {
  it("adds money as exact decimals, never through floats", () => {
    expect(addDecimal("0.10", "0.20")).toBe("0.30");
    expect(addDecimal("1234.5", "0.05")).toBe("1234.55");
    expect(addDecimal("0", "99999999999999999.99")).toBe("99999999999999999.99");
    expect(addDecimal("-1.50", "1.25")).toBe("-0.25");
  });

  it("orders columns by stage position and totals each by currency", () => {
    const stages = [
      { id: "s2", name: "Won", position: 2 },
      { id: "s1", name: "Lead", position: 1 },
    ];
    const columns = buildColumns(stages, [
      deal("a", "s1", "10.10"),
      deal("b", "s1", "5.00", "USD"),
      deal("c", "s1", "0.90"),
      deal("d", "s2", "1.00"),
    ]);
    expect(columns.map((c) => c.stage.name)).toEqual(["Lead", "Won"]);
    expect(columns[0]!.totals).toEqual({ EUR: "11.00", USD: "5.00" });
    expect(columns[1]!.deals.map((d) => d.id)).toEqual(["d"]);
  });

  it("moves a card on a live stage change and leaves the others", () => {
    const before = [deal("a", "s1", "1"), deal("b", "s1", "2")];
    const after = applyStageChange(before, "b", "s2");
    expect(after.map((d) => d.stage_id)).toEqual(["s1", "s2"]);
    expect(before[1]!.stage_id).toBe("s1");
  });
});

describe("a move on the board", () => {
  /** The board cached at `key` on screen, with the network down: any refetch fails. */
  function boardOffline() {
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const key = ["deals", "board", "p1"];
    client.setQueryData<BoardData>(key, { deals: [deal("d1", "s1", "10.00"), deal("d2", "s1", "5.00")], more: false });
    const board = new QueryObserver(client, {
      queryKey: key,
      queryFn: async (): Promise<BoardData> => {
        throw new TypeError("Failed to fetch");
      },
      staleTime: Infinity,
    });
    const unsubscribe = board.subscribe(() => undefined);
    return { client, key, unsubscribe };
  }

  it("moves the card at once and puts it back when the server refuses, even if the refetch fails", async () => {
    const { client, key, unsubscribe } = boardOffline();
    const seen: string[] = [];
    const move = new MutationObserver<unknown, Error, MoveVars, { key: readonly unknown[] }>(client, {
      mutationFn: async () => {
        seen.push(client.getQueryData<BoardData>(key)!.deals.find((d) => d.id === "d1")!.stage_id);
        throw new Error("Precondition Failed");
      },
      ...optimisticMove(client, key),
    });
    await expect(move.mutate({ deal: { id: "d1", stage_id: "s1" }, stageId: "s2" })).rejects.toThrow();
    expect(seen).toEqual(["s2"]); // moved while the request was out
    await new Promise((resolve) => setTimeout(resolve, 10)); // the refetch has failed meanwhile
    const stages = client.getQueryData<BoardData>(key)!.deals.map((d) => `${d.id}:${d.stage_id}`);
    expect(stages).toEqual(["d1:s1", "d2:s1"]);
    unsubscribe();
  });
});

describe("loading the board", () => {
  /** A pipeline of `total` deals, served 200 a page with a cursor, and the cursors asked for. */
  function pipelineOf(total: number) {
    const asked: (string | undefined)[] = [];
    const page = async (cursor?: string) => {
      asked.push(cursor);
      const start = cursor ? Number(cursor) : 0;
      const items = Array.from({ length: Math.min(200, total - start) }, (_, i) => deal(`d${start + i}`, "s1", "1"));
      const next = start + 200;
      return { items, next_cursor: next < total ? String(next) : null };
    };
    return { page, asked };
  }

  it("says when the pipeline holds more deals than the board loads, and loads no more than its cap", async () => {
    const { page, asked } = pipelineOf(2_500);
    const board = await loadBoard(page);
    expect(board.deals).toHaveLength(2_000);
    expect(board.more).toBe(true);
    expect(asked).toHaveLength(10);
  });

  it("says nothing more when the last page has been read, even at exactly the cap", async () => {
    for (const total of [0, 350, 2_000]) {
      const { page } = pipelineOf(total);
      const board = await loadBoard(page);
      expect(board).toMatchObject({ more: false });
      expect(board.deals).toHaveLength(total);
    }
  });
});
