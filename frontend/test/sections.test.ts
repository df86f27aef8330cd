import { describe, expect, it } from "vitest";
import { LIST_EXPORTS, exportQuery } from "@/lib/exports";
import { viewHref } from "@/lib/queries";
import { downloadCsv, type Transfer } from "@/lib/transfer";

describe("plugin sections", () => {
  it("open the console's built-in screen of each plugin, or the generic list", () => {
    const href = (screen: string) => viewHref({ key: "x.y", screen });
    expect(href("payments.list")).toBe("/payments/");
    expect(href("documents.list")).toBe("/documents/");
    expect(href("notifications.feed")).toBe("/notifications/");
    expect(href("backup.sets")).toBe("/backup/");
    expect(href("deals.clients")).toBe("/clients/");
    // a screen this console does not know (a newer plugin): the generic list
    expect(viewHref({ key: "acme.things", screen: "acme.fancy" })).toBe("/view/?key=acme.things");
  });

  it("payments' export sends the list's filters (empty ones left out) and keeps the server's file name", async () => {
    const seen: string[] = [];
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      fetch: async (request) => {
        seen.push(request.url);
        return new Response("id,amount\n1,123.45\n", {
          headers: { "Content-Type": "text/csv", "Content-Disposition": 'attachment; filename="payments-20261203-170000.csv"' },
        });
      },
    };
    const { name, blob } = await downloadCsv(
      transfer,
      "/api/v1/payments/payments/export.csv",
      { q: "E2E payer", policy_id: "", client_id: "c1" },
      "payments.csv",
    );
    expect(name).toBe("payments-20261203-170000.csv");
    expect(await blob.text()).toBe("id,amount\n1,123.45\n");
    const url = new URL(seen[0]!);
    expect(url.pathname).toBe("/api/v1/payments/payments/export.csv");
    expect([...url.searchParams.entries()]).toEqual([
      ["q", "E2E payer"],
      ["client_id", "c1"],
    ]);
  });
});

describe("list exports", () => {
  it("the clients and deal lists export through their own filters, empty ones left out", () => {
    expect(LIST_EXPORTS["deals.clients"]?.path).toBe("/api/v1/deals/clients/export");
    expect(LIST_EXPORTS["deals.list"]?.path).toBe("/api/v1/deals/deals/export");
    expect(LIST_EXPORTS["deals.clients"]?.permission).toBe("deals:export");
    expect(exportQuery({ q: "Rossi", tag: "" })).toEqual({ q: "Rossi" });
  });
});

describe("backup figures", () => {
  it("shows RPO and RTO in seconds, minutes or hours per locale", async () => {
    const { duration } = await import("@/lib/backup");
    expect(duration(4.25, "en")).toBe("4.3 sec");
    expect(duration(600, "en")).toBe("10 min");
    expect(duration(5400, "en")).toBe("90 min");
    expect(duration(36_000, "en")).toBe("10 hr");
    expect(duration(600, "ru")).toBe("10 мин");
    expect(duration(null, "en")).toBe("—");
  });
});
