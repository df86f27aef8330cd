import { focusManager, type QueryClient } from "@tanstack/react-query";
import { ProblemError } from "@/api/client";
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
 * A refresh of the same user's tokens keeps the cache. `also` runs then too (what else the
 * previous user left: the lists' last filters). Returns the unsubscribe.
 */
export function clearCacheOnUserChange(queryClient: QueryClient, store: AuthStore, also?: () => void): () => void {
  let user = tokenSubject(store.getState().tokens);
  return store.subscribe((state) => {
    const next = tokenSubject(state.tokens);
    if (next === user) return;
    user = next;
    queryClient.clear();
    also?.();
  });
}

/** The queries that follow the user's permissions: who they are and the sections offered. */
const PERMISSION_QUERIES = [
  ["auth", "me"],
  ["console", "views"],
] as const;

function isPermissionQuery(key: readonly unknown[]): boolean {
  return PERMISSION_QUERIES.some((p) => p.length === key.length && p.every((part, i) => part === key[i]));
}

function isForbidden(error: unknown): boolean {
  return error instanceof ProblemError && error.status === 403;
}

/**
 * Read the signed-in user's permissions (and the sections they open) again when they may have
 * changed: an admin's change of the user's roles reaches no stream the console listens to
 * (the core streams no auth events), so without this the console offered, until a reload,
 * what the server now refuses. They are read again
 * - when the window regains focus (the admin's change was made elsewhere);
 * - when the server answers any query or change with a 403 (the server knew better);
 * - when the same user's tokens are renewed (a change of roles ends the access tokens at once:
 *   the next request meets a 401 and refreshes).
 * A 403 on the permission queries themselves starts no further reading (no loop). A read
 * already under way is joined, not restarted. Returns the unsubscribe.
 */
export function keepPermissionsFresh(queryClient: QueryClient, store: AuthStore): () => void {
  const refresh = () => {
    for (const queryKey of PERMISSION_QUERIES) {
      void queryClient.invalidateQueries({ queryKey, exact: true }, { cancelRefetch: false });
    }
  };
  const offFocus = focusManager.subscribe((focused) => {
    if (focused) refresh();
  });
  const offQueries = queryClient.getQueryCache().subscribe((event) => {
    if (event.type !== "updated" || event.action.type !== "error") return;
    if (isForbidden(event.action.error) && !isPermissionQuery(event.query.queryKey)) refresh();
  });
  const offMutations = queryClient.getMutationCache().subscribe((event) => {
    if (event.type !== "updated" || event.action.type !== "error") return;
    if (isForbidden(event.action.error)) refresh();
  });
  let tokens = store.getState().tokens;
  const offTokens = store.subscribe((state) => {
    const previous = tokens;
    tokens = state.tokens;
    // another user (or none) is clearCacheOnUserChange's: the cache is emptied there
    if (!previous || !tokens || previous.accessToken === tokens.accessToken) return;
    if (tokenSubject(previous) === tokenSubject(tokens)) refresh();
  });
  return () => {
    offFocus();
    offQueries();
    offMutations();
    offTokens();
  };
}
