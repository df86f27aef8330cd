import type { QueryClient } from "@tanstack/react-query";
import type { AuthStore, Tokens } from "@/store/auth";

/**
 * Who the tokens belong to: the access token's `sub` claim (crm2's access tokens are JWTs);
 * null when signed out, "" when the token cannot be read (then only signing in and out count).
 */
export function tokenSubject(tokens: Tokens | null): string | null {
  if (!tokens) return null;
  try {
    const payload = tokens.accessToken.split(".")[1] ?? "";
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const claims = JSON.parse(atob(base64)) as { sub?: unknown };
    return typeof claims.sub === "string" ? claims.sub : "";
  } catch {
    return "";
  }
}

/**
 * Empty the query cache whenever the signed-in user changes: a sign-out (here or in another
 * tab), a failed refresh, or another user's sign-in. The console is one page for its whole
 * life, so without this the next user to sign in was shown the previous user's name,
 * sections, permissions and records from the cache (for 30 s without even a refetch).
 * A refresh of the same user's tokens keeps the cache. Returns the unsubscribe.
 */
export function clearCacheOnUserChange(queryClient: QueryClient, store: AuthStore): () => void {
  let user = tokenSubject(store.getState().tokens);
  return store.subscribe((state) => {
    const next = tokenSubject(state.tokens);
    if (next === user) return;
    user = next;
    queryClient.clear();
  });
}
