import { describe, expect, it } from "vitest";
import { uploadImport, type ImportOptions, type ImportReport, type Transfer } from "@/lib/transfer";
import { canCommit, createImportStore, errorsByRow } from "@/store/importer";

const CSV = "name,emails\nAda,ada@x.io\nBad,not-an-email\nCyd,cyd@x.io\n";

function report(over: Partial<ImportReport> = {}): ImportReport {
  return { created: 2, updated: 0, skipped: 0, errors: [], dry_run: true, applied: false, ...over };
}

describe("the import store", () => {
  it("previews the file and dry-runs it; nothing is written before commit", async () => {
    const calls: ImportOptions[] = [];
    const store = createImportStore(async (_file, options) => {
      calls.push(options);
      return options.dryRun
        ? report({ errors: [{ row: 3, reason: "emails: not-an-email is not an e-mail" }] })
        : report({ dry_run: false, applied: true });
    });
    await store.getState().choose(new Blob([CSV]), "clients.csv");
    const state = store.getState();
    expect(state.phase).toBe("checked");
    expect(state.preview?.rows.map((r) => r.row)).toEqual([2, 3, 4]);
    expect(errorsByRow(state.check).get(3)).toEqual(["emails: not-an-email is not an e-mail"]);
    expect(calls).toEqual([{ dryRun: true, partial: true }]);

    // a file with errors is imported only when the user asks for the good rows alone
    expect(canCommit(state)).toBe(false);
    await store.getState().commit();
    expect(calls).toHaveLength(1);
    store.getState().setPartial(true);
    expect(canCommit(store.getState())).toBe(true);
    await store.getState().commit();
    expect(calls[1]).toEqual({ dryRun: false, partial: true });
    expect(store.getState().phase).toBe("done");
    expect(store.getState().result?.applied).toBe(true);
  });

  it("shows the server's refusal of the whole file", async () => {
    const store = createImportStore(async () => {
      throw new Error("the first row must name the columns, at least 'name'");
    });
    await store.getState().choose(new Blob(["x\n1\n"]), "bad.csv");
    expect(store.getState().phase).toBe("failed");
    expect(store.getState().error).toMatch(/name the columns/);
  });

  it("keeps only the latest file's answer when a slower earlier check returns late", async () => {
    let release: (r: ImportReport) => void = () => undefined;
    let started: () => void = () => undefined;
    const slow = new Promise<ImportReport>((resolve) => (release = resolve));
    const uploading = new Promise<void>((resolve) => (started = resolve));
    const first = new Blob([CSV]);
    const store = createImportStore(async (file) => {
      if (file !== first) return report({ created: 1 });
      started();
      return slow;
    });
    const a = store.getState().choose(first, "a.csv");
    await uploading; // the first file's dry run is on its way
    await store.getState().choose(new Blob(["name\nZed\n"]), "b.csv");
    release(report({ created: 99 }));
    await a;
    expect(store.getState().name).toBe("b.csv");
    expect(store.getState().check?.created).toBe(1);
    expect(store.getState().preview?.header).toEqual(["name"]);
  });
});

describe("uploadImport", () => {
  const ok = (body: unknown, init: ResponseInit = {}) =>
    new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" }, ...init });

  it("posts the file as multipart with dry_run and partial", async () => {
    const seen: Request[] = [];
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      fetch: async (request) => {
        seen.push(request);
        return ok(report());
      },
    };
    const answer = await uploadImport(transfer, "/api/v1/deals/clients/import", new Blob([CSV]), {
      dryRun: true,
      partial: false,
    });
    expect(answer.created).toBe(2);
    const url = new URL(seen[0]!.url);
    expect(url.pathname).toBe("/api/v1/deals/clients/import");
    expect(url.searchParams.get("dry_run")).toBe("true");
    expect(url.searchParams.get("partial")).toBe("false");
    const form = await seen[0]!.formData();
    expect(await (form.get("file") as Blob).text()).toBe(CSV);
  });

  it("follows a background import (202 + status resource) until its report is there", async () => {
    const polls: string[] = [];
    let pending = 2;
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      sleep: async () => undefined,
      fetch: async (request) => {
        if (request.method === "POST") {
          return ok({ id: "j1", status: "queued" }, { status: 202, headers: { Location: "/api/v1/jobs/j1" } });
        }
        polls.push(new URL(request.url).pathname);
        if (pending-- > 0) return ok({ id: "j1", status: "running" });
        return ok({ id: "j1", status: "succeeded", report: report({ dry_run: false, applied: true }) });
      },
    };
    const answer = await uploadImport(transfer, "/import", new Blob([CSV]), { dryRun: false, partial: false });
    expect(answer.applied).toBe(true);
    expect(polls).toEqual(["/api/v1/jobs/j1", "/api/v1/jobs/j1", "/api/v1/jobs/j1"]);
  });

  it("turns a problem+json refusal into its detail", async () => {
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      fetch: async () =>
        ok({ title: "The CSV file cannot be read", detail: "the file is not UTF-8 text" }, { status: 422 }),
    };
    await expect(uploadImport(transfer, "/import", new Blob(["\xff"]), { dryRun: true, partial: true })).rejects.toThrow(
      "the file is not UTF-8 text",
    );
  });
});
