import { QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { clearCacheOnUserChange } from "@/lib/userCache";
import { createAuthStore, type Tokens } from "@/store/auth";
import { createListsStore } from "@/store/lists";

function memoryStorage() {
  const data = new Map<string, string>();
  return {
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
  };
}

/** Tokens whose access token is a JWT for `sub` (the signature is never read by the console). */
function tokensOf(sub: string, n = 1): Tokens {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return {
    accessToken: `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, jti: String(n) })}.c2ln`,
    refreshToken: `r-${sub}-${n}`,
    expiresAt: Date.now() + 900_000,
  };
}

function signedInAs(sub: string) {
  const store = createAuthStore(memoryStorage());
  store.getState().setTokens(tokensOf(sub));
  const client = new QueryClient();
  const stop = clearCacheOnUserChange(client, store);
  client.setQueryData(["auth", "me"], { email: `${sub}@example.com` });
  client.setQueryData(["deals", "board", "p1"], [{ id: "d1", title: `${sub}'s deal` }]);
  return { store, client, stop };
}

describe("the query cache belongs to the signed-in user", () => {
  it("is emptied on sign-out, so the next user to sign in in this page never sees it", () => {
    const { store, client } = signedInAs("ada");
    store.getState().setTokens(null);
    expect(client.getQueryData(["auth", "me"])).toBeUndefined();
    expect(client.getQueryData(["deals", "board", "p1"])).toBeUndefined();
    store.getState().setTokens(tokensOf("bob"));
    expect(client.getQueryCache().getAll()).toEqual([]);
  });

  it("is emptied when another user signs in without signing out first (the sign-in page opened by hand)", () => {
    const { store, client } = signedInAs("ada");
    store.getState().setTokens(tokensOf("bob"));
    expect(client.getQueryData(["auth", "me"])).toBeUndefined();
  });

  it("takes the lists' last filters with it: the next user's navigation opens lists unfiltered", () => {
    const store = createAuthStore(memoryStorage());
    store.getState().setTokens(tokensOf("ada"));
    const lists = createListsStore(memoryStorage());
    lists.getState().remember("/clients/", "?q=ada's client");
    clearCacheOnUserChange(new QueryClient(), store, () => lists.getState().forgetAll());
    store.getState().setTokens(tokensOf("ada", 2)); // a refresh keeps them
    expect(lists.getState().queries).toEqual({ "/clients/": "?q=ada's client" });
    store.getState().setTokens(null);
    expect(lists.getState().queries).toEqual({});
  });

  it("is kept across a token refresh of the same user", () => {
    const { store, client } = signedInAs("ada");
    store.getState().setTokens(tokensOf("ada", 2));
    expect(client.getQueryData(["auth", "me"])).toEqual({ email: "ada@example.com" });
  });

  it("stops watching when asked", () => {
    const { store, client, stop } = signedInAs("ada");
    stop();
    store.getState().setTokens(null);
    expect(client.getQueryData(["auth", "me"])).toEqual({ email: "ada@example.com" });
  });
});
