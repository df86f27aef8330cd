import { describe, expect, it } from "vitest";
import { backUpNow, futureDated, type BackupSet } from "@/lib/backup";

const ORIGIN = "http://crm2.test";
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const set = (status: string): BackupSet => ({ id: "s1", status, started_at: "2026-01-01T00:00:00Z", finished_at: null });

function harness(answers: Response[]) {
  const requests: string[] = [];
  const progress: string[] = [];
  const options = {
    origin: ORIGIN,
    fetch: async (request: Request) => {
      requests.push(`${request.method} ${request.url}`);
      const answer = answers.shift();
      if (!answer) throw new Error("no more answers");
      return answer;
    },
    problem: async (response: Response) => new Error(`problem ${response.status}`),
    onProgress: (s: BackupSet) => progress.push(s.status),
    sleep: async () => undefined,
  };
  return { options, requests, progress };
}

describe("backUpNow", () => {
  it("takes a 201's set as done", async () => {
    const h = harness([json(201, set("completed"), { Location: "/api/v1/backup/sets/s1" })]);
    expect((await backUpNow(h.options)).status).toBe("completed");
    expect(h.requests).toEqual([`POST ${ORIGIN}/api/v1/backup/sets`]);
  });

  it("polls a 202's set (its Location) until it is no longer queued or running", async () => {
    const h = harness([
      json(202, set("queued"), { Location: "/api/v1/backup/sets/s1" }),
      json(200, set("running")),
      json(200, { ...set("failed"), error: "disk full" }),
    ]);
    const done = await backUpNow(h.options);
    expect(done).toMatchObject({ status: "failed", error: "disk full" });
    expect(h.progress).toEqual(["queued", "running", "failed"]);
    expect(h.requests.slice(1)).toEqual([`GET ${ORIGIN}/api/v1/backup/sets/s1`, `GET ${ORIGIN}/api/v1/backup/sets/s1`]);
  });

  it("stops polling when the server says done (a drill asked for runs under 'completed')", async () => {
    const h = harness([
      json(202, { ...set("queued"), state: "queued", done: false }, { Location: "/api/v1/backup/sets/s1" }),
      json(200, { ...set("completed"), state: "verifying", done: false }),
      json(200, { ...set("completed"), state: "verified", done: true }),
    ]);
    expect((await backUpNow(h.options)).state).toBe("verified");
    expect(h.requests).toHaveLength(3);
  });

  it("polls by the set's id without a Location, and throws the problem of a refused POST", async () => {
    const h = harness([json(202, set("running")), json(200, set("completed"))]);
    expect((await backUpNow(h.options)).status).toBe("completed");
    expect(h.requests.at(-1)).toBe(`GET ${ORIGIN}/api/v1/backup/sets/s1`);
    await expect(backUpNow(harness([json(503, { title: "down" })]).options)).rejects.toThrow("problem 503");
  });
});

describe("futureDated", () => {
  it("marks a set the server says is dated ahead of its clock, from the list's rows too", () => {
    expect(futureDated({ ...set("completed"), future_dated: true })).toBe(true);
    const row: Record<string, unknown> = { id: "s2", status: "completed", future_dated: true };
    expect(futureDated(row)).toBe(true);
  });

  it("does not mark a set dated in the past, or one from an older server that does not say", () => {
    expect(futureDated({ ...set("completed"), future_dated: false })).toBe(false);
    expect(futureDated(set("completed"))).toBe(false);
    expect(futureDated({ future_dated: "yes" })).toBe(false);
  });
});
