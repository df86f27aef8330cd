import type { AuthStore, Tokens } from "@/store/auth";
import { withLock } from "@/lib/lock";

type Fetch = (input: Request) => Promise<Response>;

interface LoginPending {
  status: "pending";
  confirmation_token: string;
  expires_at: string;
  poll_seconds: number;
}

interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

/** Refresh this long before the access token expires, so requests rarely meet a 401. */
const EARLY_MS = 15_000;
/** After a refresh that may pass later failed (5xx, 408, the network): 1 s, doubling to this. */
const MAX_BACKOFF_MS = 60_000;
/** The longest a 429's Retry-After keeps refreshes paused (a wrong header must not lock us out). */
const MAX_RETRY_AFTER_MS = 300_000;

/**
 * Signs requests with the access token and keeps the session alive.
 *
 * A request that meets a 401 refreshes once and is retried, so the user never sees
 * an expiry. Refreshes are serialised across tabs: inside the lock the stored tokens
 * are read again, and when another tab already rotated them they are simply used.
 *
 * Inside the page, callers share the one refresh in flight. A refresh that failed in a way
 * that may pass later (429, 408, 5xx, the network) pauses refreshing: until a 429's
 * Retry-After, else 1 s doubling to 60 s. Without the pause, every request made while the
 * server was struggling sent a refresh of its own (a storm that kept it struggling). The
 * pause is stored with the tokens and read inside the cross-tab lock, so it holds for every
 * tab of the origin: with a pause per tab, each open tab sent a refresh of its own.
 */
export class Session {
  private refreshing: Promise<Tokens | null> | null = null;

  constructor(
    private readonly store: AuthStore,
    private readonly baseUrl: string,
    private readonly send: Fetch = (request) => fetch(request),
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((resolve) => setTimeout(resolve, ms)),
  ) {}

  get tokens(): Tokens | null {
    return this.store.getState().tokens;
  }

  /**
   * Sign in. An account that confirms sign-ins out of band (the Telegram bot) answers
   * 202: `onPending` is told, and the confirmation is polled until the user answers
   * (200 with the tokens, 401 when refused) or it expires. Resolves with the last answer.
   */
  async login(
    email: string,
    password: string,
    onPending: () => void = () => undefined,
  ): Promise<Response> {
    let response = await this.send(this.json("/api/v1/auth/login", { email, password }));
    if (response.status === 202) {
      onPending();
      let pending = (await response.clone().json()) as LoginPending;
      const deadline = Date.parse(pending.expires_at);
      while (response.status === 202 && this.now() < deadline) {
        await this.sleep(Math.max(1, pending.poll_seconds) * 1000);
        response = await this.send(
          this.json("/api/v1/auth/login/confirm", {
            confirmation_token: pending.confirmation_token,
          }),
        );
        if (response.status === 202) pending = (await response.clone().json()) as LoginPending;
      }
    }
    if (response.status === 200) {
      this.store.getState().setTokens(this.toTokens(await response.clone().json()));
      this.store.getState().setRefreshPause(null);
    }
    return response;
  }

  async logout(): Promise<void> {
    const tokens = this.tokens;
    this.store.getState().setTokens(null);
    if (tokens) {
      await this.send(this.json("/api/v1/auth/logout", { refresh_token: tokens.refreshToken })).catch(
        () => undefined,
      );
    }
  }

  /**
   * An access token valid for at least `validForMs` more, refreshing first when it is not
   * (a long upload asks for more than a request does); null when signed out. When the
   * refresh fails but the token has not expired yet, it is used for as long as it lasts.
   */
  async accessToken(validForMs: number = EARLY_MS): Promise<string | null> {
    const tokens = this.tokens;
    if (!tokens) return null;
    if (tokens.expiresAt - this.now() > validForMs) return tokens.accessToken;
    const fresh = await this.refresh(tokens.refreshToken);
    if (fresh) return fresh.accessToken;
    const still = this.tokens; // null when the refresh was refused: signed out
    return still && still.expiresAt > this.now() ? still.accessToken : null;
  }

  /** A new access token after the server refused `refused` with a 401; null when none can be had. */
  async renewAccess(refused: string): Promise<string | null> {
    const spent = this.tokens?.refreshToken;
    if (!spent) return null;
    return (await this.refresh(spent, refused))?.accessToken ?? null;
  }

  /** The `fetch` given to openapi-fetch: signs, refreshes on 401, retries once. */
  readonly fetch = async (request: Request): Promise<Response> => {
    const retry = request.clone();
    const token = await this.accessToken();
    const response = await this.send(this.sign(request, token));
    const spent = this.tokens?.refreshToken;
    if (response.status !== 401 || !token || !spent) return response;
    const fresh = await this.refresh(spent, token);
    if (!fresh) return response;
    return this.send(this.sign(retry, fresh.accessToken));
  };

  /**
   * Rotate the refresh token unless another tab (or call) already did.
   * `staleAccess` is the access token that was refused: if the stored one differs,
   * someone refreshed meanwhile.
   */
  async refresh(spentRefresh: string, staleAccess?: string): Promise<Tokens | null> {
    // one refresh in flight serves every caller of this page (its tokens suit them all)
    if (this.refreshing) return this.refreshing;
    const run = this.refreshOnce(spentRefresh, staleAccess).finally(() => {
      this.refreshing = null;
    });
    this.refreshing = run;
    return run;
  }

  private refreshOnce(spentRefresh: string, staleAccess?: string): Promise<Tokens | null> {
    return withLock("crm2.refresh", async () => {
      await this.store.persist.rehydrate(); // what other tabs wrote
      const current = this.tokens;
      if (!current) return null;
      const rotatedElsewhere =
        current.refreshToken !== spentRefresh ||
        (staleAccess !== undefined && current.accessToken !== staleAccess);
      if (rotatedElsewhere && current.expiresAt - this.now() > EARLY_MS) return current;
      // another tab's failed refresh pauses this one too (the store was just re-read)
      if (this.refreshPaused()) return null;
      let response: Response;
      try {
        response = await this.send(
          this.json("/api/v1/auth/refresh", { refresh_token: current.refreshToken }),
        );
      } catch (error) {
        this.pauseRefreshes(null);
        throw error;
      }
      if (!response.ok) {
        // a 4xx says this refresh token will never work (refused, revoked, malformed): sign out
        // rather than try it again on every request; a 408, a 429 or a 5xx may pass later
        const refused = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
        if (refused) this.store.getState().setTokens(null);
        else this.pauseRefreshes(response);
        return null;
      }
      const tokens = this.toTokens((await response.json()) as TokenPair);
      this.store.getState().setTokens(tokens);
      this.store.getState().setRefreshPause(null);
      return tokens;
    });
  }

  /**
   * Whether a failed refresh (of any tab) still pauses refreshing. A stored pause reaching
   * further than any we set (a clock set back, a hand-edited storage) is ignored, so it
   * cannot keep the session from refreshing for good.
   */
  private refreshPaused(): boolean {
    const until = this.store.getState().refreshPause?.until ?? 0;
    const left = until - this.now();
    return left > 0 && left <= MAX_RETRY_AFTER_MS;
  }

  /**
   * No refresh, in any tab, before the server's Retry-After, else before a back-off that
   * doubles with each failure in a row (whichever tab met it).
   */
  private pauseRefreshes(response: Response | null): void {
    const header = response?.headers.get("Retry-After") ?? "";
    const seconds = header.trim() === "" ? NaN : Number(header);
    const failures = this.store.getState().refreshPause?.failures ?? 0;
    const wait =
      Number.isFinite(seconds) && seconds >= 0
        ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS)
        : Math.min(1000 * 2 ** failures, MAX_BACKOFF_MS);
    this.store.getState().setRefreshPause({ until: this.now() + wait, failures: failures + 1 });
  }

  private sign(request: Request, token: string | null): Request {
    const signed = new Request(request);
    if (token) signed.headers.set("Authorization", `Bearer ${token}`);
    return signed;
  }

  private json(path: string, body: unknown): Request {
    return new Request(new URL(path, this.baseUrl), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  private toTokens(pair: TokenPair): Tokens {
    return {
      accessToken: pair.access_token,
      refreshToken: pair.refresh_token,
      expiresAt: this.now() + pair.expires_in * 1000,
    };
  }
}
