import { createStore } from "zustand/vanilla";
import { createJSONStorage, persist } from "zustand/middleware";

/** The signed-in session's tokens; persisted so that a reload or a second tab stays signed in. */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** epoch milliseconds at which the access token expires */
  expiresAt: number;
}

/**
 * Refreshes paused after one failed in a way that may pass later (lib/session.ts): persisted
 * with the tokens, so that every tab of the origin waits out the same back-off instead of
 * each tab retrying on its own.
 */
export interface RefreshPause {
  /** epoch milliseconds before which no tab refreshes */
  until: number;
  /** failed refreshes in a row: the next back-off doubles with each */
  failures: number;
}

export interface AuthState {
  tokens: Tokens | null;
  refreshPause: RefreshPause | null;
  setTokens: (tokens: Tokens | null) => void;
  setRefreshPause: (pause: RefreshPause | null) => void;
}

export type AuthStore = ReturnType<typeof createAuthStore>;

const memory = new Map<string, string>();
const memoryStorage = {
  getItem: (key: string) => memory.get(key) ?? null,
  setItem: (key: string, value: string) => void memory.set(key, value),
  removeItem: (key: string) => void memory.delete(key),
};

export function createAuthStore(storage: Pick<Storage, "getItem" | "setItem" | "removeItem">) {
  return createStore<AuthState>()(
    persist(
      (set) => ({
        tokens: null,
        refreshPause: null,
        setTokens: (tokens) => set({ tokens }),
        setRefreshPause: (refreshPause) => set({ refreshPause }),
      }),
      { name: "crm2.auth", storage: createJSONStorage(() => storage) },
    ),
  );
}

export const authStore = createAuthStore(
  typeof window !== "undefined" ? window.localStorage : memoryStorage,
);

// Another tab signed in, refreshed or signed out: every tab of the origin follows at once
// (the shared streams stop on sign-out everywhere, not only where the button was pressed).
if (typeof window !== "undefined") {
  window.addEventListener("storage", (event) => {
    if (event.key !== "crm2.auth" && event.key !== null) return;
    if (event.newValue === null) authStore.getState().setTokens(null); // removed or storage cleared
    else void authStore.persist.rehydrate();
  });
}
