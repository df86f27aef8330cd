import { create } from "zustand";
import { createJSONStorage, persist } from "zustand/middleware";
import type { StreamStatus } from "@/lib/stream";

export type Locale = "en" | "ru";
export type Theme = "light" | "dark";

/** Client state that is nobody's server data: language, theme, the live connection. */
export interface UiState {
  locale: Locale;
  theme: Theme;
  live: StreamStatus;
  setLocale: (locale: Locale) => void;
  toggleTheme: () => void;
  setLive: (status: StreamStatus) => void;
}

export const useUi = create<UiState>()(
  persist(
    (set) => ({
      locale: "en",
      theme: "light",
      live: "closed",
      setLocale: (locale) => set({ locale }),
      toggleTheme: () => set((state) => ({ theme: state.theme === "light" ? "dark" : "light" })),
      setLive: (live) => set({ live }),
    }),
    {
      name: "crm2.ui",
      storage: createJSONStorage(() => localStorage),
      partialize: (state) => ({ locale: state.locale, theme: state.theme }),
      skipHydration: typeof window === "undefined",
    },
  ),
);
