import { describe, expect, it } from "vitest";
import { jobDone, settleAccepted } from "@/lib/jobs";

const ORIGIN = "http://crm2.test";
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

function harness(answers: Response[]) {
  const requests: string[] = [];
  const options = {
    origin: ORIGIN,
    fetch: async (request: Request) => {
      requests.push(`${request.method} ${request.url}`);
      const answer = answers.shift();
      if (!answer) throw new Error("no more answers");
      return answer;
    },
    problem: async (response: Response) => new Error(`problem ${response.status}`),
    sleep: async () => undefined,
  };
  return { options, requests };
}

describe("settleAccepted", () => {
  it("polls a 202's Location until the run is done (a restore drill)", async () => {
    const h = harness([
      json(200, { id: "r1", status: "running", done: false }),
      json(200, { id: "r1", status: "ok", done: true, drill_id: "d1" }),
    ]);
    const accepted = json(202, { id: "r1", status: "queued", done: false }, { Location: "/api/v1/backup/runs/r1" });
    expect(await settleAccepted(accepted, h.options)).toMatchObject({ status: "ok", done: true });
    expect(h.requests).toEqual([`GET ${ORIGIN}/api/v1/backup/runs/r1`, `GET ${ORIGIN}/api/v1/backup/runs/r1`]);
  });

  it("takes any other answer as it is, and throws the problem of a refused one", async () => {
    const h = harness([]);
    expect(await settleAccepted(json(201, { id: "x", status: "ok" }), h.options)).toMatchObject({ id: "x" });
    expect(await settleAccepted(new Response(null, { status: 204 }), h.options)).toBeNull();
    await expect(settleAccepted(json(409, { title: "busy" }), h.options)).rejects.toThrow("problem 409");
    expect(h.requests).toEqual([]);
  });

  it("judges done by the status when the server does not say it", () => {
    expect(jobDone({ status: "queued" })).toBe(false);
    expect(jobDone({ status: "failed" })).toBe(true);
    expect(jobDone({ status: "running", done: true })).toBe(true);
  });
});
