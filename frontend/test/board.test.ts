import { MutationObserver, QueryClient, QueryObserver } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { ProblemError } from "@/api/client";
import { messages } from "@/lib/i18n";
import { addDecimal, applyStageChange, buildColumns, columnFigures, loadBoard, moveDeal, moveOnBoard, optimisticMove, stageChangeOf, type BoardData, type BoardDeal, type MoveVars } from "@/lib/board";

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

describe("a move right after a live stage change", () => {
  type Card = BoardDeal & { version: number };
  const stale412 = () => new ProblemError(412, "Precondition Failed", "stale");

  /** The server's deal `d1` at `version` in `stage`, and the versions each move was sent with. */
  function server(stage: string, version: number) {
    const sent: number[] = [];
    let current: Card = { ...deal("d1", stage, "1"), version };
    return {
      sent,
      move: async (to: string, ifMatch: number): Promise<Card> => {
        sent.push(ifMatch);
        if (ifMatch !== current.version) throw stale412();
        current = { ...current, stage_id: to, version: current.version + 1 };
        return current;
      },
      read: async (): Promise<Card> => current,
      moveElsewhere: (to: string) => {
        current = { ...current, stage_id: to, version: current.version + 1 };
      },
    };
  }

  it("reads the card again and moves it once more when only its version was stale", async () => {
    // the live event moved the card s1 → s2 on screen; the card still holds version 1, the server 2
    const api = server("s2", 2);
    const onScreen: Card = { ...deal("d1", "s2", "1"), version: 1 };
    const moved = await moveDeal(onScreen, "s3", { move: api.move, read: api.read });
    expect(moved).toMatchObject({ stage_id: "s3", version: 3 });
    expect(api.sent).toEqual([1, 2]);
  });

  it("is refused (412) when someone put the card in another stage than the one shown", async () => {
    const api = server("s2", 2);
    api.moveElsewhere("s4");
    const onScreen: Card = { ...deal("d1", "s2", "1"), version: 1 };
    await expect(moveDeal(onScreen, "s3", { move: api.move, read: api.read })).rejects.toMatchObject({ status: 412 });
    expect(api.sent).toEqual([1]); // never sent over someone else's move
  });

  it("retries once only, and never after another refusal", async () => {
    const onScreen: Card = { ...deal("d1", "s1", "1"), version: 1 };
    const sent: number[] = [];
    const always412 = async (_to: string, v: number): Promise<Card> => {
      sent.push(v);
      throw stale412();
    };
    const read = async (): Promise<Card> => ({ ...onScreen, version: 5 });
    await expect(moveDeal(onScreen, "s2", { move: always412, read })).rejects.toMatchObject({ status: 412 });
    expect(sent).toEqual([1, 5]);
    const forbidden = async (_to: string, v: number): Promise<Card> => {
      sent.push(v);
      throw new ProblemError(403, "Forbidden", "");
    };
    sent.length = 0;
    await expect(moveDeal(onScreen, "s2", { move: forbidden, read })).rejects.toMatchObject({ status: 403 });
    expect(sent).toEqual([1]);
  });

  it("needs no second move when the card is already where it was sent", async () => {
    const api = server("s3", 4);
    const onScreen: Card = { ...deal("d1", "s2", "1"), version: 1 };
    // someone else made the same move meanwhile; the board had not seen it yet
    const moved = await moveDeal({ ...onScreen }, "s3", { move: api.move, read: api.read });
    expect(moved).toMatchObject({ stage_id: "s3", version: 4 });
    expect(api.sent).toEqual([1]);
  });
});

describe("a live stage change carrying the deal's version", () => {
  type Card = BoardDeal & { version: number };
  const card = (stage: string, version: number): Card => ({ ...deal("d1", stage, "1"), version });
  const event = (data: Record<string, unknown>) => ({ subject: "d1", data: { from_stage_id: "s1", to_stage_id: "s2", ...data } });

  it("gives the card the event's version, so the next move needs no read of the card", async () => {
    const board = { deals: [card("s1", 1)], more: false };
    const change = stageChangeOf(event({ version: 2 }));
    const after = moveOnBoard(board, change.dealId, change.toStageId, change.version)!;
    expect(after.deals[0]).toMatchObject({ stage_id: "s2", version: 2 });
    const sent: number[] = [];
    let reads = 0;
    const moved = await moveDeal(after.deals[0]!, "s3", {
      move: async (to, version) => {
        sent.push(version);
        if (version !== 2) throw new ProblemError(412, "Precondition Failed", "stale");
        return { ...card(to, 3) };
      },
      read: async () => {
        reads += 1;
        return card("s2", 2);
      },
    });
    expect(moved).toMatchObject({ stage_id: "s3", version: 3 });
    expect(sent).toEqual([2]);
    expect(reads).toBe(0);
  });

  it("falls back to moving the card only when the event has no version (older deals plugins)", () => {
    const change = stageChangeOf(event({}));
    expect(change.version).toBeUndefined();
    expect(stageChangeOf(event({ version: "7" })).version).toBeUndefined(); // malformed: ignored
    const after = applyStageChange([card("s1", 1)], change.dealId, change.toStageId, change.version);
    expect(after[0]).toMatchObject({ stage_id: "s2", version: 1 });
  });

  it("ignores an event older than the card it holds: a late event never moves a card back", () => {
    // our own move already brought version 3 in s3; the event of the earlier move arrives late
    const after = applyStageChange([card("s3", 3)], "d1", "s2", 2);
    expect(after[0]).toMatchObject({ stage_id: "s3", version: 3 });
  });

  it("gives a cut-off board's columns the summary's true figures, or marks them partial where it cannot", () => {
    const stages = [
      { id: "s1", name: "Lead", position: 1, kind: "open" },
      { id: "s2", name: "Won", position: 2, kind: "won" },
    ];
    const [lead, won] = buildColumns(stages, [deal("a", "s1", "10.00"), deal("b", "s2", "5.00")]);
    const summary = [
      { stage_id: "s1", count: 2400, totals: [{ currency: "EUR", value: "99000.00" }] },
      { stage_id: "s2", count: 7, totals: [{ currency: "EUR", value: "70.00" }] },
    ];
    const none = { q: "", status: "" };
    // every deal loaded: the cards' own figures
    expect(columnFigures(lead!, false, none, summary)).toEqual({ count: "1", totals: { EUR: "10.00" }, partial: false });
    // cut off: the server's figures, not the loaded cards'
    expect(columnFigures(lead!, true, none, summary, (n) => n.toLocaleString("en-US"))).toEqual({
      count: "2,400",
      totals: { EUR: "99000.00" },
      partial: false,
    });
    // the summary knows no title search, nor is it there yet: the loaded figures, marked partial
    expect(columnFigures(lead!, true, { q: "acme", status: "" }, summary)).toEqual({
      count: "1+",
      totals: { EUR: "10.00" },
      partial: true,
    });
    expect(columnFigures(lead!, true, none, undefined).partial).toBe(true);
    // a status filter: a stage of that kind takes the summary, another holds none of the filtered deals
    expect(columnFigures(won!, true, { q: "", status: "won" }, summary).count).toBe("7");
    expect(columnFigures(lead!, true, { q: "", status: "won" }, summary)).toEqual({
      count: "1",
      totals: { EUR: "10.00" },
      partial: false,
    });
    expect(messages.en["board.truncatedPartial"]).toMatch(/marked \+ cover only the deals shown/);
    expect(messages.en["board.truncated"]).toMatch(/this pipeline holds more \(the column counts and totals include them\)/);
    expect(messages.ru["board.truncatedPartial"]).toMatch(/учитывают только показанные/);
  });
});
