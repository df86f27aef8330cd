import { describe, expect, it } from "vitest";
import { cellText, coerce, fieldLabel, formFields, idempotencyKeys, oneAtATime, type OpenApiDoc } from "@/lib/forms";
import { formatMoney, translate } from "@/lib/i18n";

const doc: OpenApiDoc = {
  components: {
    schemas: {
      Kind: { type: "string", enum: ["person", "company"] },
      ClientCreate: {
        type: "object",
        required: ["kind", "name"],
        properties: {
          kind: { $ref: "#/components/schemas/Kind" },
          name: { type: "string", maxLength: 300 },
          emails: { type: "array", items: { type: "string" } },
          seats: { anyOf: [{ type: "integer" }, { type: "null" }] },
          start_date: { type: "string", format: "date" },
          active: { type: "boolean" },
        },
      },
    },
  },
};

describe("generic forms from OpenAPI", () => {
  it("types each field from the component, through $ref and nullable anyOf", () => {
    const fields = formFields(doc, "ClientCreate", ["kind", "name", "emails", "seats", "start_date", "active"]);
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ["kind", "enum", true],
      ["name", "text", true],
      ["emails", "list", false],
      ["seats", "number", false],
      ["start_date", "date", false],
      ["active", "boolean", false],
    ]);
    expect(fields[0]!.options).toEqual(["person", "company"]);
    expect(fields[1]!.maxLength).toBe(300);
  });

  it("turns inputs into JSON values and leaves empty ones out", () => {
    const [kind, name, emails, seats] = formFields(doc, "ClientCreate", ["kind", "name", "emails", "seats"]);
    expect(coerce(name!, "  Acme ")).toBe("Acme");
    expect(coerce(name!, "   ")).toBeUndefined();
    expect(coerce(emails!, "a@x.io, b@x.io,")).toEqual(["a@x.io", "b@x.io"]);
    expect(coerce(seats!, "12")).toBe(12);
    expect(coerce(seats!, "twelve")).toBe("twelve"); // the server's 422 says what is wrong
    expect(coerce(kind!, "company")).toBe("company");
  });

  it("labels fields readably", () => {
    expect(fieldLabel("end_date")).toBe("End date");
    expect(fieldLabel("q")).toBe("Q");
  });

  it("shows any JSON value in a cell", () => {
    expect(cellText(["a", "b"])).toBe("a, b");
    expect(cellText(null)).toBe("");
    expect(cellText(true)).toBe("true");
  });
});

describe("i18n", () => {
  it("translates with parameters, in English and Russian", () => {
    expect(translate("en", "home.welcome", { name: "Ann" })).toBe("Welcome, Ann");
    expect(translate("ru", "home.welcome", { name: "Аня" })).toBe("Добро пожаловать, Аня");
  });

  it("formats money per locale", () => {
    expect(formatMoney("en", "1234.5", "EUR")).toBe("€1,234.50");
    expect(formatMoney("ru", "1234.5", "RUB").replace(/\s/g, " ")).toBe("1 234,50 ₽");
  });
});

describe("idempotencyKeys", () => {
  it("sends one key for one body however often it is sent, and a new key for a changed body", () => {
    let n = 0;
    const keyFor = idempotencyKeys(() => `k${++n}`);
    expect(keyFor({ name: "Ada" })).toBe("k1");
    expect(keyFor({ name: "Ada" })).toBe("k1"); // a double click or a retry after a network error
    expect(keyFor({ name: "Ada Lovelace" })).toBe("k2"); // fixed after a 422: crm2 refuses k1 now
    expect(keyFor({ name: "Ada Lovelace" })).toBe("k2");
  });
});

describe("oneAtATime", () => {
  it("drops a save asked for while the previous one is still out, and takes the next one after it", async () => {
    const run = oneAtATime();
    const sent: string[] = [];
    let answer: () => void = () => undefined;
    const save = (name: string) => () =>
      new Promise<void>((resolve) => {
        sent.push(name);
        answer = resolve;
      });
    const first = run(save("first"));
    const second = run(save("second")); // the double click's second submit
    expect(await second).toBe(false);
    answer();
    expect(await first).toBe(true);
    expect(await run(async () => void sent.push("later"))).toBe(true);
    expect(sent).toEqual(["first", "later"]);
  });

  it("takes the next save after one that failed", async () => {
    const run = oneAtATime();
    await expect(run(async () => Promise.reject(new Error("412")))).rejects.toThrow("412");
    expect(await run(async () => undefined)).toBe(true);
  });
});
