"use client";

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useState, type ReactNode } from "react";
import { retryDelay, shouldRetry } from "@/api/client";
import { clearCacheOnUserChange, keepPermissionsFresh } from "@/lib/userCache";
import { authStore } from "@/store/auth";
import { listsStore } from "@/store/lists";
import { useUi } from "@/store/ui";

export function Providers({ children }: { children: ReactNode }) {
  const [client] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          queries: { staleTime: 30_000, retry: shouldRetry, retryDelay, refetchOnWindowFocus: false },
        },
      }),
  );
  // one user's cached records are never shown to the next user signing in on this page
  useEffect(
    () => clearCacheOnUserChange(client, authStore, () => listsStore.getState().forgetAll()),
    [client],
  );
  // an admin's change of this user's roles shows without a reload (on focus, a 403, a renewal)
  useEffect(() => keepPermissionsFresh(client, authStore), [client]);
  const theme = useUi((s) => s.theme);
  const locale = useUi((s) => s.locale);
  useEffect(() => {
    void useUi.persist.rehydrate();
  }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    document.documentElement.lang = locale;
  }, [theme, locale]);
  return <QueryClientProvider client={client}>{children}</QueryClientProvider>;
}
