import { describe, expect, it } from "vitest";
import { filtersFrom, withFilters } from "@/lib/listFilters";

describe("a list's filters in the address", () => {
  const names = ["q", "status", "currency"];

  it("reads the view's own filters that have a value, nothing else", () => {
    const params = new URLSearchParams("key=deals.list&q=ada&status=&cursor=x&currency=EUR");
    expect(filtersFrom(params, names)).toEqual({ q: "ada", currency: "EUR" });
    expect(filtersFrom(new URLSearchParams(""), names)).toEqual({});
  });

  it("writes the applied filters, leaving out empty ones and keeping the page's parameters", () => {
    const query = withFilters("key=deals.list&q=old&status=won", names, { q: "Ada Rossi", status: "", currency: "EUR" });
    expect(query).toBe("?key=deals.list&q=Ada+Rossi&currency=EUR");
    expect(withFilters("q=old", names, { q: "", status: "" })).toBe("");
  });

  it("what it writes reads back as the same filters (a reload shows the list as it was)", () => {
    const chosen = { q: "a&b=c ?#", status: "open", currency: "" };
    const query = withFilters("", names, chosen);
    expect(filtersFrom(new URLSearchParams(query), names)).toEqual({ q: "a&b=c ?#", status: "open" });
  });
});
