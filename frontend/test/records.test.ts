import { describe, expect, it } from "vitest";
import { ProblemError } from "@/api/client";
import { unreadableRecord } from "@/lib/records";
import { messages } from "@/lib/i18n";

const problem = (status: number, body: Record<string, unknown>) =>
  ProblemError.from(new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/problem+json" } }));

describe("a record's screen that cannot read its record", () => {
  it("says the link is broken for /deal/?id=nope, not the server's 'path.deal_id: Input should be a valid UUID'", async () => {
    const error = await problem(422, {
      title: "Validation failed",
      detail: "path.deal_id: Input should be a valid UUID, invalid character",
      errors: [{ loc: ["path", "deal_id"], msg: "Input should be a valid UUID", type: "uuid_parsing" }],
    });
    const key = unreadableRecord(error);
    expect(key).toBe("record.badLink");
    expect(messages.en[key!]).not.toMatch(/path\.|UUID/);
  });

  it("says the record was not found for a 404", async () => {
    expect(unreadableRecord(await problem(404, { title: "Not Found", detail: "deal not found" }))).toBe("record.notFound");
  });

  it("leaves other failures their own message (the server down, a refusal, a body's field)", async () => {
    expect(unreadableRecord(await problem(503, { title: "Service Unavailable" }))).toBeNull();
    expect(unreadableRecord(await problem(403, { title: "Forbidden" }))).toBeNull();
    const body = await problem(422, { errors: [{ loc: ["body", "title"], msg: "required", type: "missing" }] });
    expect(unreadableRecord(body)).toBeNull();
    expect(unreadableRecord(new TypeError("Failed to fetch"))).toBeNull();
  });
});
