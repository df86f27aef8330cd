import { describe, expect, it } from "vitest";
import { listHref, withFilters } from "@/lib/listFilters";
import { createListsStore } from "@/store/lists";

function tabStorage() {
  const items = new Map<string, string>();
  return {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
    removeItem: (key: string) => void items.delete(key),
  };
}

describe("the navigation returns to a list's last filters in this tab", () => {
  it("links a list with the query of its filters, keeping the list's own parameters", () => {
    expect(listHref("/clients/", "?q=ada")).toBe("/clients/?q=ada");
    expect(listHref("/view/?key=deals.list", "?q=ada&status=won")).toBe("/view/?key=deals.list&q=ada&status=won");
    expect(listHref("/view/?key=deals.list", "")).toBe("/view/?key=deals.list");
    // a remembered query never replaces the list's own key
    expect(listHref("/view/?key=deals.list", "?key=other")).toBe("/view/?key=deals.list");
  });

  it("remembers each list's filters, and the link opens the list filtered as it was left", () => {
    const store = createListsStore(tabStorage());
    const names = ["q", "key"];
    const applied = withFilters("", names, { q: "Ada Rossi", key: "K-7" });
    store.getState().remember("/view/?key=deals.list", applied);
    store.getState().remember("/clients/", "?q=bo");
    const { queries } = store.getState();
    expect(listHref("/view/?key=deals.list", queries["/view/?key=deals.list"] ?? "")).toBe(
      "/view/?key=deals.list&q=Ada+Rossi&filter.key=K-7",
    );
    expect(listHref("/clients/", queries["/clients/"] ?? "")).toBe("/clients/?q=bo");
  });

  it("forgets a list's filters once they are cleared, and every list's when the user changes", () => {
    const store = createListsStore(tabStorage());
    store.getState().remember("/clients/", "?q=bo");
    store.getState().remember("/documents/", "?q=x");
    store.getState().remember("/clients/", "");
    expect(store.getState().queries).toEqual({ "/documents/": "?q=x" });
    store.getState().forgetAll();
    expect(store.getState().queries).toEqual({});
  });

  it("keeps them in the tab's storage: the page loaded again (a new store) still has them", () => {
    const storage = tabStorage();
    createListsStore(storage).getState().remember("/clients/", "?q=bo");
    expect(createListsStore(storage).getState().queries).toEqual({ "/clients/": "?q=bo" });
  });
});
