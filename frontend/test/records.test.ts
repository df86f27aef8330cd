import { describe, expect, it } from "vitest";
import { ProblemError } from "@/api/client";
import { ifMatchFor, unactedRecord, unsavedRecord, unreadableRecord } from "@/lib/records";
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

describe("a plugin section's edit form whose record is gone", () => {
  it("says the record was deleted for a 404 on save, not the server's 'no thing <uuid>'", async () => {
    const key = unsavedRecord(await problem(404, { title: "Not Found", detail: "no thing 7f1c0c9e-0000-4000-8000-000000000000" }));
    expect(key).toBe("record.deleted");
    expect(messages.en[key!]).not.toMatch(/[0-9a-f]{8}-/);
    expect(unsavedRecord(await problem(410, { title: "Gone" }))).toBe("record.deleted");
  });

  it("says someone else changed it for a 412, and leaves a body's 422 to its fields", async () => {
    expect(unsavedRecord(await problem(412, { title: "Precondition Failed", detail: "the resource changed" }))).toBe(
      "error.conflict",
    );
    const body = await problem(422, { errors: [{ loc: ["body", "name"], msg: "too long", type: "string_too_long" }] });
    expect(unsavedRecord(body)).toBeNull();
    expect(unsavedRecord(new TypeError("Failed to fetch"))).toBeNull();
  });

  it("has the words in every language", () => {
    for (const locale of Object.keys(messages) as (keyof typeof messages)[]) {
      expect(messages[locale]["record.deleted"]).toBeTruthy();
    }
  });
});

describe("a plugin section's row action (Complete …) on a record deleted meanwhile", () => {
  it("says the record is gone in words for a 404/410, not the server's 'no thing <uuid>'", async () => {
    const key = unactedRecord(await problem(404, { title: "Not Found", detail: "no thing 7f1c0c9e-0000-4000-8000-000000000000" }));
    expect(key).toBe("record.actionGone");
    expect(unactedRecord(await problem(410, { title: "Gone" }))).toBe("record.actionGone");
    for (const locale of Object.keys(messages) as (keyof typeof messages)[]) {
      expect(messages[locale]["record.actionGone"]).toBeTruthy();
      expect(messages[locale]["record.actionGone"]).not.toMatch(/[0-9a-f]{8}-/);
    }
  });

  it("leaves other refusals (a 409 'already completed', a 403) their own message", async () => {
    expect(unactedRecord(await problem(409, { title: "Conflict", detail: "already completed" }))).toBeNull();
    expect(unactedRecord(await problem(403, { title: "Forbidden" }))).toBeNull();
    expect(unactedRecord(new TypeError("Failed to fetch"))).toBeNull();
  });
});

describe("the If-Match an edit form sends back", () => {
  it("is built from the record's version, so a proxy's weakened ETag (W/) does not make every save a 412", () => {
    expect(ifMatchFor('W/"v3"', { id: "x", version: 3 })).toBe('"v3"');
    expect(ifMatchFor('"v3"', { id: "x", version: 3 })).toBe('"v3"');
  });

  it("falls back to the header's own tag, never weak, for a body without a version", () => {
    expect(ifMatchFor('W/"v7"', { id: "x" })).toBe('"v7"');
    expect(ifMatchFor('"v7"', { id: "x", version: "7" })).toBe('"v7"');
    expect(ifMatchFor(null, {})).toBe("");
  });
});
