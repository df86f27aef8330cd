import { focusManager, MutationObserver, QueryClient, QueryObserver } from "@tanstack/react-query";
import { afterEach, describe, expect, it } from "vitest";
import { ProblemError } from "@/api/client";
import { keepPermissionsFresh } from "@/lib/userCache";
import { createAuthStore, type Tokens } from "@/store/auth";

function memoryStorage() {
  const data = new Map<string, string>();
  return {
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
  };
}

function tokensOf(sub: string, n = 1): Tokens {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return {
    accessToken: `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, jti: String(n) })}.c2ln`,
    refreshToken: `r-${sub}-${n}`,
    expiresAt: Date.now() + 900_000,
  };
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A page showing the user's permissions (["auth", "me"]) as an admin changes their role. */
function onScreen() {
  const store = createAuthStore(memoryStorage());
  store.getState().setTokens(tokensOf("ada"));
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 30_000, refetchOnWindowFocus: false } } });
  const server = { permissions: ["deals:read", "deals:write"], meCalls: 0, viewsCalls: 0 };
  const me = new QueryObserver(client, {
    queryKey: ["auth", "me"],
    queryFn: async () => {
      server.meCalls += 1;
      return { permissions: [...server.permissions] };
    },
  });
  const views = new QueryObserver(client, {
    queryKey: ["console", "views"],
    queryFn: async () => {
      server.viewsCalls += 1;
      return [];
    },
  });
  const stops = [me.subscribe(() => undefined), views.subscribe(() => undefined)];
  const stop = keepPermissionsFresh(client, store);
  stops.push(stop);
  const shown = () => me.getCurrentResult().data?.permissions;
  return { store, client, server, shown, stop: () => stops.forEach((s) => s()) };
}

describe("the permissions shown follow the user's role", () => {
  afterEach(() => focusManager.setFocused(undefined));

  it("are read again when the window regains focus", async () => {
    const page = onScreen();
    await settled();
    expect(page.shown()).toContain("deals:write");
    page.server.permissions = ["deals:read"]; // an admin made the user a viewer
    focusManager.setFocused(false);
    focusManager.setFocused(true);
    await settled();
    expect(page.shown()).toEqual(["deals:read"]);
    expect(page.server.viewsCalls).toBe(2); // the sections offered follow the permissions too
    page.stop();
  });

  it("are read again when the server answers a query with a 403", async () => {
    const page = onScreen();
    await settled();
    page.server.permissions = ["deals:read"];
    const board = new QueryObserver(page.client, {
      queryKey: ["deals", "board"],
      queryFn: async () => {
        throw new ProblemError(403, "Forbidden", "");
      },
    });
    const off = board.subscribe(() => undefined);
    await settled();
    await settled();
    expect(page.shown()).toEqual(["deals:read"]);
    off();
    page.stop();
  });

  it("are read again when the server refuses a change with a 403", async () => {
    const page = onScreen();
    await settled();
    page.server.permissions = ["deals:read"];
    const move = new MutationObserver(page.client, {
      mutationFn: async () => {
        throw new ProblemError(403, "Forbidden", "");
      },
    });
    await expect(move.mutate()).rejects.toThrow();
    await settled();
    expect(page.shown()).toEqual(["deals:read"]);
    page.stop();
  });

  it("are read again when the same user's tokens are renewed (a role change ends the access token)", async () => {
    const page = onScreen();
    await settled();
    page.server.permissions = ["deals:read"];
    page.store.getState().setTokens(tokensOf("ada", 2));
    await settled();
    expect(page.shown()).toEqual(["deals:read"]);
    page.stop();
  });

  it("are not re-read for other errors, nor in a loop when reading them is refused", async () => {
    const page = onScreen();
    await settled();
    const calls = page.server.meCalls;
    const missing = new QueryObserver(page.client, {
      queryKey: ["deals", "deal", "x"],
      queryFn: async () => {
        throw new ProblemError(404, "Not Found", "");
      },
    });
    const off = missing.subscribe(() => undefined);
    await settled();
    expect(page.server.meCalls).toBe(calls);
    off();
    // the views themselves refused (403): one refetch of the permissions, never a loop
    let refusals = 0;
    const refused = new QueryObserver(page.client, {
      queryKey: ["console", "views"],
      queryFn: async () => {
        // refused 3 times at most, so that a loop ends and fails the test rather than hang it
        if (++refusals > 3) return [];
        throw new ProblemError(403, "Forbidden", "");
      },
      staleTime: 0,
    });
    const off2 = refused.subscribe(() => undefined);
    await refused.refetch();
    for (let i = 0; i < 5; i++) await settled();
    expect(page.server.meCalls).toBeLessThanOrEqual(calls + 1);
    off2();
    page.stop();
  });

  it("stops watching when asked", async () => {
    const page = onScreen();
    await settled();
    page.stop();
    const calls = page.server.meCalls;
    focusManager.setFocused(false);
    focusManager.setFocused(true);
    await settled();
    expect(page.server.meCalls).toBe(calls);
  });
});
