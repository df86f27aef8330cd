import { describe, expect, it } from "vitest";
import { uploadImport, type ImportOptions, type ImportReport, type Transfer } from "@/lib/transfer";
import { canCommit, createImportStore, errorsByRow } from "@/store/importer";

const CSV = "name,emails\nAda,ada@x.io\nBad,not-an-email\nCyd,cyd@x.io\n";

function report(over: Partial<ImportReport> = {}): ImportReport {
  const errors = over.errors ?? [];
  return {
    created: 2, updated: 0, skipped: 0, errors, error_count: errors.length, dry_run: true, applied: false,
    ignored_columns: [], ...over,
  };
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

  it("reads the report of a refused import (422 import-refused) and throws on any other 422", async () => {
    const problem = (body: Record<string, unknown>) =>
      new Response(JSON.stringify({ type: "urn:crm2:problem:x", status: 422, ...body }), {
        status: 422,
        headers: { "Content-Type": "application/problem+json" },
      });
    const refused = report({ created: 2, errors: [{ row: 4, reason: "kind" }] });
    let answer: Response = problem({ detail: "1 row(s) have errors", report: refused });
    const transfer: Transfer = { baseUrl: "http://crm2.test", fetch: async () => answer };
    const options = { dryRun: false, partial: false };
    const got = await uploadImport(transfer, "/api/v1/deals/clients/import", new Blob([CSV]), options);
    expect(got).toMatchObject({ created: 2, applied: false, error_count: 1 });
    answer = problem({ detail: "no name column", errors: [{ loc: ["file"], msg: "x" }] });
    await expect(
      uploadImport(transfer, "/api/v1/deals/clients/import", new Blob([CSV]), options),
    ).rejects.toThrow("no name column");
  });

  it("reads the report of a refused background import (status refused, the 422's problem)", async () => {
    const errors = [{ row: 4, reason: "kind: not a kind" }];
    const problem = {
      type: "urn:crm2:problem:import-refused", title: "Rows of the file have errors: nothing was written",
      status: 422, detail: "1500 row(s) have errors", report: report({ errors, dry_run: false }),
    };
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      sleep: async () => undefined,
      fetch: async (request) =>
        request.method === "POST"
          ? ok({ id: "j3", status: "queued" }, { status: 202, headers: { Location: "/j3" } })
          : ok({ id: "j3", status: "refused", phase: "done", errors, error_count: 1500, applied: false, problem }),
    };
    const options = { dryRun: false, partial: false };
    const answer = await uploadImport(transfer, "/api/v1/deals/clients/import", new Blob([CSV]), options);
    expect(answer).toMatchObject({ errors, error_count: 1500, applied: false, dry_run: false });
  });

  it("keeps the columns a background import ignored, as the synchronous report names them", async () => {
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      sleep: async () => undefined,
      fetch: async (request) =>
        request.method === "POST"
          ? ok({ id: "j4", status: "queued" }, { status: 202, headers: { Location: "/j4" } })
          : ok({ id: "j4", status: "done", phase: "done", created: 3, errors: [], error_count: 0,
                 dry_run: true, applied: false, ignored_columns: ["emials"] }),
    };
    const answer = await uploadImport(transfer, "/import", new Blob([CSV]), { dryRun: true, partial: false });
    expect(answer.ignored_columns).toEqual(["emials"]);
  });

  it("follows a background import (202 + Location) with its progress until it is done", async () => {
    const polls: string[] = [];
    const pauses: number[] = [];
    const seen: string[] = [];
    let processed = 0;
    const job = (status: string, over: Record<string, unknown> = {}) => ({
      id: "j1", kind: "deals.clients", status, phase: status === "done" ? "done" : "writing", dry_run: false,
      partial: true, total: 50_000, processed, created: 0, updated: 0, skipped: 0, error_count: 0, errors: [],
      applied: false, detail: null, ...over,
    });
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      sleep: async (ms) => void pauses.push(ms),
      onProgress: (p) => seen.push(`${p.phase} ${p.processed}/${p.total}`),
      fetch: async (request) => {
        if (request.method === "POST") {
          return ok(job("queued"), { status: 202, headers: { Location: "/api/v1/deals/clients/import/j1" } });
        }
        polls.push(new URL(request.url).pathname);
        processed += 25_000;
        if (processed < 50_000) return ok(job("running"), { headers: { "Retry-After": "2" } });
        const errors = [{ row: 7, reason: "no name" }];
        return ok(job("done", { created: 49_998, errors, error_count: 2, applied: true }));
      },
    };
    const answer = await uploadImport(transfer, "/api/v1/deals/clients/import", new Blob([CSV]), {
      dryRun: false,
      partial: true,
    });
    expect(answer).toMatchObject({ created: 49_998, error_count: 2, applied: true });
    expect(answer.errors).toHaveLength(1); // the job lists only the first errors; the count is all of them
    expect(polls).toEqual(["/api/v1/deals/clients/import/j1", "/api/v1/deals/clients/import/j1"]);
    expect(seen).toEqual(["writing 25000/50000"]);
    expect(pauses).toEqual([1000, 2000]); // Retry-After paces the next poll
  });

  it("says why a background import failed", async () => {
    const transfer: Transfer = {
      baseUrl: "http://crm2.test",
      sleep: async () => undefined,
      fetch: async (request) =>
        request.method === "POST"
          ? ok({ id: "j2", status: "queued" }, { status: 202, headers: { Location: "/j2" } })
          : ok({ id: "j2", status: "failed", errors: [], detail: "the worker stopped" }),
    };
    await expect(uploadImport(transfer, "/import", new Blob([CSV]), { dryRun: true, partial: true })).rejects.toThrow(
      "the worker stopped",
    );
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
