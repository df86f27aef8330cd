import { useStore } from "zustand";
import { createJSONStorage, persist } from "zustand/middleware";
import { createStore } from "zustand/vanilla";

/**
 * The filters each list was last shown with in this tab, so the navigation's link to a list
 * opens it as the user left it: the filters live in the list's address, and a nav link (which
 * names the list alone) opened it unfiltered, while back, forward and a reload kept them.
 * Kept in sessionStorage: this tab's, gone with it, and forgotten when the user changes.
 */
export interface ListsState {
  /** A list's own address (`viewHref`) → the query of its applied filters (`?q=ada`). */
  queries: Record<string, string>;
  remember: (list: string, query: string) => void;
  forgetAll: () => void;
}

type Storage = Pick<globalThis.Storage, "getItem" | "setItem" | "removeItem">;

export function createListsStore(storage: Storage) {
  return createStore<ListsState>()(
    persist(
      (set) => ({
        queries: {},
        remember: (list, query) =>
          set((state) => {
            if ((state.queries[list] ?? "") === query) return state;
            const queries = { ...state.queries };
            if (query) queries[list] = query;
            else delete queries[list];
            return { queries };
          }),
        forgetAll: () => set({ queries: {} }),
      }),
      { name: "crm2.lists", storage: createJSONStorage(() => storage), partialize: (s) => ({ queries: s.queries }) },
    ),
  );
}

const memory = new Map<string, string>();
const memoryStorage: Storage = {
  getItem: (key) => memory.get(key) ?? null,
  setItem: (key, value) => void memory.set(key, value),
  removeItem: (key) => void memory.delete(key),
};

export const listsStore = createListsStore(typeof window !== "undefined" ? window.sessionStorage : memoryStorage);

export function useLists<T>(select: (state: ListsState) => T): T {
  return useStore(listsStore, select);
}
