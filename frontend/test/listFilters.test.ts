import { describe, expect, it } from "vitest";
import { filtersFrom, listPageQuery, withFilters } from "@/lib/listFilters";

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

  it("keeps a filter named like a page parameter apart from it (the view's key, a record's id)", () => {
    const names = ["key", "id", "q"];
    // a view with a filter named "key" on /view/?key=…: the view's key must survive applying it
    const query = withFilters("key=deals.list", names, { key: "K-7", id: "42", q: "ada" });
    const params = new URLSearchParams(query);
    expect(params.get("key")).toBe("deals.list");
    expect(params.get("id")).toBeNull();
    expect(filtersFrom(params, names)).toEqual({ key: "K-7", id: "42", q: "ada" });
    // clearing the filter leaves the page's own parameter in place
    expect(withFilters(query.slice(1), names, {})).toBe("?key=deals.list");
    // and the page's parameter is never read as the filter
    expect(filtersFrom(new URLSearchParams("key=deals.list"), names)).toEqual({});
  });

  it("gives every filter name its own parameter, even one that looks namespaced", () => {
    const names = ["key", "filter.key"];
    const query = withFilters("", names, { key: "a", "filter.key": "b" });
    expect(filtersFrom(new URLSearchParams(query), names)).toEqual({ key: "a", "filter.key": "b" });
  });
});

describe("the query of a page of a view's list", () => {
  it("sends the applied filters with the page size, and the cursor after the first page", () => {
    expect(listPageQuery(["q", "status"], { q: "ada" }, "")).toEqual({ q: "ada", limit: "50" });
    expect(listPageQuery(["q", "status"], { q: "ada", status: "open" }, "c2")).toEqual({
      q: "ada",
      status: "open",
      limit: "50",
      cursor: "c2",
    });
  });

  it("refuses a view filter named limit or cursor instead of silently replacing its value", () => {
    for (const name of ["limit", "cursor"]) {
      expect(() => listPageQuery(["q", name], { [name]: "5" }, "c2")).toThrow(
        new RegExp(`filter "${name}" has the name of the list's paging parameter`),
      );
      // even while the filter is empty: the view itself is wrong, not this page
      expect(() => listPageQuery([name], {}, "")).toThrow(/paging parameter/);
    }
  });
});
