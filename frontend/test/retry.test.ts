import { describe, expect, it } from "vitest";
import { mayPassLater, ProblemError, retryDelay, shouldRetry } from "@/api/client";

const problem = (status: number, headers: Record<string, string> = {}) =>
  ProblemError.from(
    new Response(JSON.stringify({ title: "t", detail: `status ${status}` }), {
      status,
      headers: { "Content-Type": "application/problem+json", ...headers },
    }),
  );

describe("retrying a failed query", () => {
  it("waits the Retry-After of a 429 before asking again, instead of 1 s", async () => {
    const limited = await problem(429, { "Retry-After": "7" });
    expect(limited.retryAfter).toBe(7);
    expect(shouldRetry(0, limited)).toBe(true);
    expect(retryDelay(0, limited)).toBe(7000);
    expect(shouldRetry(2, limited)).toBe(false); // then the error is shown (its detail says when)
  });

  it("does not ask again what a 4xx refused: the answer would be the same", async () => {
    for (const status of [400, 401, 403, 404, 409, 412, 422]) {
      expect(shouldRetry(0, await problem(status))).toBe(false);
    }
  });

  it("retries a 5xx or a network error once, after 1 s", async () => {
    expect(shouldRetry(0, await problem(502))).toBe(true);
    expect(shouldRetry(1, await problem(502))).toBe(false);
    expect(shouldRetry(0, new TypeError("Failed to fetch"))).toBe(true);
    expect(retryDelay(0, new TypeError("Failed to fetch"))).toBe(1000);
  });

  it("retries what each browser's fetch throws when the network fails", () => {
    for (const message of ["Failed to fetch", "NetworkError when attempting to fetch resource.", "Load failed", "fetch failed"]) {
      expect(shouldRetry(0, new TypeError(message))).toBe(true);
    }
  });

  it("never retries an error of the console itself: it would be computed again, the same, before it shows", () => {
    // a view that names its filter like the paging parameter (lib/listFilters.ts), a bad
    // response body read as a page, a JSON parse error: asking again gives the same error
    const errors = [
      new Error('This view\'s filter "cursor" has the name of the list\'s paging parameter'),
      new TypeError("Cannot read properties of undefined (reading 'items')"),
      new SyntaxError("Unexpected token < in JSON at position 0"),
      "a thrown string",
      undefined,
    ];
    for (const error of errors) expect(shouldRetry(0, error)).toBe(false);
  });
});

describe("offering Try again on a failed screen", () => {
  it("offers it when asking again may help, not after a 404, 403 or 422", async () => {
    for (const status of [500, 502, 503, 408, 429]) expect(mayPassLater(await problem(status))).toBe(true);
    expect(mayPassLater(new TypeError("Failed to fetch"))).toBe(true);
    for (const status of [400, 403, 404, 422]) expect(mayPassLater(await problem(status))).toBe(false);
  });
});
