import { describe, expect, it } from "vitest";
import { addDecimal, applyStageChange, buildColumns, type BoardDeal } from "@/lib/board";

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
