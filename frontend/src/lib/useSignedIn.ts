import { useSyncExternalStore } from "react";
import { authStore } from "@/store/auth";

/** Whether this origin holds a session's tokens; null while prerendering (no storage there). */
export function useSignedIn(): boolean | null {
  return useSyncExternalStore(
    authStore.subscribe,
    () => authStore.getState().tokens !== null,
    () => null,
  );
}
