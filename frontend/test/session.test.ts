import { describe, expect, it } from "vitest";
import { Session } from "@/lib/session";
import { createAuthStore } from "@/store/auth";

const BASE = "http://crm2.test";

function memoryStorage() {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
  };
}

/** A fake crm2: access tokens "a1", "a2"…; refresh tokens rotate and a reused one is refused. */
function fakeServer() {
  let generation = 1;
  const spent = new Set<string>();
  const calls: string[] = [];
  const send = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    calls.push(`${request.method} ${path} ${request.headers.get("Authorization") ?? ""}`.trim());
    if (path === "/api/v1/auth/login" || path === "/api/v1/auth/refresh") {
      if (path.endsWith("refresh")) {
        const { refresh_token } = (await request.json()) as { refresh_token: string };
        if (spent.has(refresh_token) || refresh_token !== `r${generation}`) {
          return new Response(JSON.stringify({ title: "reused" }), { status: 401 });
        }
        spent.add(refresh_token);
        generation += 1;
      }
      return Response.json({
        access_token: `a${generation}`,
        refresh_token: `r${generation}`,
        token_type: "bearer",
        expires_in: 900,
      });
    }
    const current = `Bearer a${generation}`;
    return request.headers.get("Authorization") === current
      ? Response.json({ ok: true })
      : new Response("{}", { status: 401 });
  };
  return { send, calls };
}

describe("Session", () => {
  it("signs requests with the access token after login", async () => {
    const server = fakeServer();
    const store = createAuthStore(memoryStorage());
    const session = new Session(store, BASE, server.send);
    expect((await session.login("a@b.c", "pw")).ok).toBe(true);
    const response = await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(response.status).toBe(200);
    expect(server.calls.at(-1)).toBe("GET /api/v1/auth/me Bearer a1");
  });

  it("refreshes on a 401 and retries the request once, without a visible logout", async () => {
    const server = fakeServer();
    const store = createAuthStore(memoryStorage());
    const session = new Session(store, BASE, server.send);
    await session.login("a@b.c", "pw");
    // the server rotated elsewhere: our access token is now refused, our refresh token valid
    store.getState().setTokens({ ...store.getState().tokens!, accessToken: "stale" });
    const response = await session.fetch(new Request(`${BASE}/api/v1/deals/deals`));
    expect(response.status).toBe(200);
    expect(store.getState().tokens?.refreshToken).toBe("r2");
    expect(server.calls.filter((c) => c.includes("/refresh"))).toHaveLength(1);
  });

  it("refreshes ahead of expiry, so the request itself never meets a 401", async () => {
    const server = fakeServer();
    let now = 1_000_000;
    const store = createAuthStore(memoryStorage());
    const session = new Session(store, BASE, server.send, () => now);
    await session.login("a@b.c", "pw");
    now += 900_000 - 5_000; // five seconds left
    await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(server.calls.map((c) => c.split(" ")[1])).toEqual([
      "/api/v1/auth/login",
      "/api/v1/auth/refresh",
      "/api/v1/auth/me",
    ]);
    expect(server.calls.at(-1)).toContain("Bearer a2");
  });

  it("serialises concurrent refreshes: one rotation serves every waiting request", async () => {
    const server = fakeServer();
    const store = createAuthStore(memoryStorage());
    const session = new Session(store, BASE, server.send);
    await session.login("a@b.c", "pw");
    store.getState().setTokens({ ...store.getState().tokens!, accessToken: "stale" });
    const answers = await Promise.all(
      [1, 2, 3].map(() => session.fetch(new Request(`${BASE}/api/v1/auth/me`))),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    // a second rotation with the spent token would have revoked the family (401 → signed out)
    expect(server.calls.filter((c) => c.includes("/refresh"))).toHaveLength(1);
    expect(store.getState().tokens).not.toBeNull();
  });

  it("uses tokens another tab rotated instead of spending the old refresh token", async () => {
    const server = fakeServer();
    const shared = memoryStorage();
    const tabA = createAuthStore(shared);
    const tabB = createAuthStore(shared);
    const a = new Session(tabA, BASE, server.send);
    const b = new Session(tabB, BASE, server.send);
    await a.login("a@b.c", "pw");
    await tabB.persist.rehydrate();
    tabA.getState().setTokens({ ...tabA.getState().tokens!, accessToken: "stale" });
    await a.fetch(new Request(`${BASE}/api/v1/auth/me`)); // tab A rotates to r2
    // tab B still holds a1/r1 in memory: a1 is refused now, and spending r1 would revoke
    const response = await b.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(response.status).toBe(200);
    expect(server.calls.filter((c) => c.includes("/refresh"))).toHaveLength(1);
    expect(tabB.getState().tokens?.refreshToken).toBe("r2");
  });

  it("signs out when the refresh token is refused", async () => {
    const server = fakeServer();
    const store = createAuthStore(memoryStorage());
    const session = new Session(store, BASE, server.send);
    await session.login("a@b.c", "pw");
    store.getState().setTokens({ accessToken: "stale", refreshToken: "r-unknown", expiresAt: Date.now() + 60_000 });
    const response = await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(response.status).toBe(401);
    expect(store.getState().tokens).toBeNull();
  });

  it("signs out when the stored refresh token is refused as malformed (422), instead of refreshing on every request", async () => {
    const calls: string[] = [];
    const send = async (request: Request): Promise<Response> => {
      const path = new URL(request.url).pathname;
      calls.push(path);
      if (path === "/api/v1/auth/refresh") {
        return new Response(JSON.stringify({ status: 422, title: "The request is invalid" }), { status: 422 });
      }
      return new Response("{}", { status: 401 });
    };
    const store = createAuthStore(memoryStorage());
    // what an older console (or a hand-edited storage) left behind
    store.getState().setTokens({ accessToken: "stale", refreshToken: "short", expiresAt: Date.now() + 60_000 });
    const session = new Session(store, BASE, send);
    await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(store.getState().tokens).toBeNull();
    expect(calls.filter((c) => c === "/api/v1/auth/refresh")).toHaveLength(1);
  });

  it("keeps the session when a refresh is only rate-limited or the server is down", async () => {
    for (const status of [429, 503]) {
      const send = async (request: Request): Promise<Response> =>
        new URL(request.url).pathname === "/api/v1/auth/refresh"
          ? new Response("{}", { status, headers: { "Retry-After": "5" } })
          : new Response("{}", { status: 401 });
      const store = createAuthStore(memoryStorage());
      store.getState().setTokens({ accessToken: "stale", refreshToken: "r-1234567890abcdef", expiresAt: Date.now() + 60_000 });
      await new Session(store, BASE, send).fetch(new Request(`${BASE}/api/v1/auth/me`));
      expect(store.getState().tokens).not.toBeNull();
    }
  });

  it("after a failed refresh (503), requests wait out a back-off instead of each trying another refresh", async () => {
    let now = 1_000_000;
    const refreshes: number[] = [];
    const send = async (request: Request): Promise<Response> => {
      if (new URL(request.url).pathname === "/api/v1/auth/refresh") {
        refreshes.push(now);
        return new Response("{}", { status: 503 });
      }
      return new Response("{}", { status: 401 });
    };
    const store = createAuthStore(memoryStorage());
    store.getState().setTokens({ accessToken: "old", refreshToken: "r-1234567890abcdef", expiresAt: now - 1 });
    const session = new Session(store, BASE, send, () => now);
    // three at once share one refresh, and the next requests do not start another
    await Promise.all([1, 2, 3].map(() => session.fetch(new Request(`${BASE}/api/v1/auth/me`))));
    await session.fetch(new Request(`${BASE}/api/v1/deals/deals`));
    expect(refreshes).toHaveLength(1);
    now += 500; // still inside the back-off
    await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(refreshes).toHaveLength(1);
    now += 1_000; // past it: one more try, then a longer wait
    await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    await session.fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(refreshes).toHaveLength(2);
    expect(store.getState().tokens).not.toBeNull();
  });

  it("shares the refresh back-off across tabs: after one tab's refresh failed (503), the others wait too", async () => {
    let now = 1_000_000;
    const refreshes: string[] = [];
    let down = true;
    const send = async (request: Request): Promise<Response> => {
      if (new URL(request.url).pathname === "/api/v1/auth/refresh") {
        refreshes.push(request.headers.get("X-Tab") ?? "");
        if (down) return new Response("{}", { status: 503 });
        return Response.json({ access_token: "a2", refresh_token: "r2", token_type: "bearer", expires_in: 900 });
      }
      return request.headers.get("Authorization") === "Bearer a2"
        ? Response.json({ ok: true })
        : new Response("{}", { status: 401 });
    };
    const shared = memoryStorage();
    const tabs = ["A", "B", "C"].map((name) => {
      const store = createAuthStore(shared);
      const tag = async (request: Request) => {
        const tagged = new Request(request);
        tagged.headers.set("X-Tab", name);
        return send(tagged);
      };
      return { store, session: new Session(store, BASE, tag, () => now) };
    });
    tabs[0]!.store.getState().setTokens({ accessToken: "old", refreshToken: "r1-1234567890abcdef", expiresAt: now - 1 });
    for (const tab of tabs) await tab.store.persist.rehydrate();
    const me = () => new Request(`${BASE}/api/v1/auth/me`);

    await tabs[0]!.session.fetch(me()); // tab A meets the 503: 1 s back-off for every tab
    await tabs[1]!.session.fetch(me());
    await tabs[2]!.session.fetch(me());
    expect(refreshes).toEqual(["A"]);
    now += 1_100; // past it: tab B tries once, fails, and the doubled back-off (2 s) holds for all
    await tabs[1]!.session.fetch(me());
    await tabs[0]!.session.fetch(me());
    await tabs[2]!.session.fetch(me());
    expect(refreshes).toEqual(["A", "B"]);
    now += 1_500; // still inside the 2 s
    await tabs[2]!.session.fetch(me());
    expect(refreshes).toEqual(["A", "B"]);
    now += 600;
    down = false; // tab C refreshes; the others use its tokens without a refresh of their own
    expect((await tabs[2]!.session.fetch(me())).status).toBe(200);
    expect((await tabs[0]!.session.fetch(me())).status).toBe(200);
    expect((await tabs[1]!.session.fetch(me())).status).toBe(200);
    expect(refreshes).toEqual(["A", "B", "C"]);
    expect(tabs[0]!.store.getState().refreshPause).toBeNull();
  });

  it("ignores a stored pause reaching further than any back-off (a clock set back): refreshing resumes", async () => {
    const now = 1_000_000;
    let refreshes = 0;
    const send = async (request: Request): Promise<Response> => {
      if (new URL(request.url).pathname === "/api/v1/auth/refresh") {
        refreshes += 1;
        return Response.json({ access_token: "a2", refresh_token: "r2", token_type: "bearer", expires_in: 900 });
      }
      return Response.json({ ok: true });
    };
    const store = createAuthStore(memoryStorage());
    store.getState().setTokens({ accessToken: "old", refreshToken: "r1-1234567890abcdef", expiresAt: now - 1 });
    store.getState().setRefreshPause({ until: now + 86_400_000, failures: 3 });
    await new Session(store, BASE, send, () => now).fetch(new Request(`${BASE}/api/v1/auth/me`));
    expect(refreshes).toBe(1);
  });

  it("after a refresh answered 429, tries again only once its Retry-After has passed", async () => {
    let now = 1_000_000;
    let refreshes = 0;
    const send = async (request: Request): Promise<Response> => {
      const path = new URL(request.url).pathname;
      if (path === "/api/v1/auth/refresh") {
        refreshes += 1;
        if (refreshes === 1) return new Response("{}", { status: 429, headers: { "Retry-After": "30" } });
        return Response.json({ access_token: "a2", refresh_token: "r2", token_type: "bearer", expires_in: 900 });
      }
      return request.headers.get("Authorization") === "Bearer a2"
        ? Response.json({ ok: true })
        : new Response("{}", { status: 401 });
    };
    const store = createAuthStore(memoryStorage());
    store.getState().setTokens({ accessToken: "old", refreshToken: "r-1234567890abcdef", expiresAt: now - 1 });
    const session = new Session(store, BASE, send, () => now);
    expect((await session.fetch(new Request(`${BASE}/api/v1/auth/me`))).status).toBe(401);
    now += 29_000;
    expect((await session.fetch(new Request(`${BASE}/api/v1/auth/me`))).status).toBe(401);
    expect(refreshes).toBe(1);
    now += 1_500;
    expect((await session.fetch(new Request(`${BASE}/api/v1/auth/me`))).status).toBe(200);
    expect(refreshes).toBe(2);
  });

  it("keeps using an access token that is still valid while a refresh ahead of expiry fails", async () => {
    let now = 1_000_000;
    const seen: string[] = [];
    const send = async (request: Request): Promise<Response> => {
      if (new URL(request.url).pathname === "/api/v1/auth/refresh") return new Response("{}", { status: 503 });
      seen.push(request.headers.get("Authorization") ?? "");
      return Response.json({ ok: true });
    };
    const store = createAuthStore(memoryStorage());
    store.getState().setTokens({ accessToken: "a1", refreshToken: "r-1234567890abcdef", expiresAt: now + 10_000 });
    const session = new Session(store, BASE, send, () => now);
    expect((await session.fetch(new Request(`${BASE}/api/v1/auth/me`))).status).toBe(200);
    expect(seen).toEqual(["Bearer a1"]);
  });

  it("waits for an out-of-band confirmation (202), then signs in", async () => {
    const store = createAuthStore(memoryStorage());
    const calls: string[] = [];
    let polls = 0;
    const pending = (token: string) =>
      Response.json(
        { status: "pending", confirmation_token: token, expires_at: "2999-01-01T00:00:00Z", poll_seconds: 2 },
        { status: 202 },
      );
    const send = async (request: Request): Promise<Response> => {
      const path = new URL(request.url).pathname;
      calls.push(path);
      if (path === "/api/v1/auth/login") return pending("secret-confirmation");
      const { confirmation_token } = (await request.json()) as { confirmation_token: string };
      expect(confirmation_token).toBe("secret-confirmation");
      polls += 1;
      if (polls < 3) return pending("secret-confirmation");
      return Response.json({ access_token: "a1", refresh_token: "r1", token_type: "bearer", expires_in: 900 });
    };
    const slept: number[] = [];
    const sleep = async (ms: number) => void slept.push(ms);
    const session = new Session(store, BASE, send, Date.now, sleep);
    let told = 0;
    const response = await session.login("a@b.c", "pw", () => (told += 1));
    expect(response.status).toBe(200);
    expect(told).toBe(1);
    expect(slept).toEqual([2000, 2000, 2000]);
    expect(calls.filter((c) => c === "/api/v1/auth/login/confirm")).toHaveLength(3);
    expect(store.getState().tokens?.accessToken).toBe("a1");
  });

  it("stores nothing when the confirmation is refused", async () => {
    const store = createAuthStore(memoryStorage());
    const send = async (request: Request): Promise<Response> =>
      new URL(request.url).pathname === "/api/v1/auth/login"
        ? Response.json(
            { status: "pending", confirmation_token: "t".repeat(20), expires_at: "2999-01-01T00:00:00Z", poll_seconds: 1 },
            { status: 202 },
          )
        : Response.json({ title: "refused" }, { status: 401 });
    const session = new Session(store, BASE, send, Date.now, async () => undefined);
    const response = await session.login("a@b.c", "pw");
    expect(response.status).toBe(401);
    expect(store.getState().tokens).toBeNull();
  });
});
