import { describe, expect, it } from "vitest";
import { csvPreview, filenameFrom, parseCsv } from "@/lib/csv";

describe("CSV for the import preview", () => {
  it("reads quotes, doubled quotes, commas and newlines inside quotes, CRLF and a BOM", () => {
    const text = '\uFEFFname,address\r\n"Acme, Ltd","1 Main St\nSpringfield"\r\n"Say ""hi""",x\r\n';
    expect(parseCsv(text)).toEqual([
      ["name", "address"],
      ["Acme, Ltd", "1 Main St\nSpringfield"],
      ['Say "hi"', "x"],
    ]);
  });

  it("numbers rows as the server does: header is row 1, blank lines are not rows", () => {
    const text = "Name,Emails\nAda,ada@x.io\n\nBob,bob@x.io\n,\nCyd,\n";
    const preview = csvPreview(text, 2);
    expect(preview.header).toEqual(["name", "emails"]);
    expect(preview.rows).toEqual([
      { row: 2, cells: ["Ada", "ada@x.io"] },
      { row: 3, cells: ["Bob", "bob@x.io"] },
    ]);
    // the row of commas only is counted by the server's numbering, then skipped
    expect(csvPreview(text).rows.map((r) => r.row)).toEqual([2, 3, 5]);
    expect(preview.total).toBe(3);
  });

  it("keeps a last record without a trailing newline", () => {
    expect(parseCsv("a,b\n1,2")).toEqual([
      ["a", "b"],
      ["1", "2"],
    ]);
  });

  it("takes the download's name from Content-Disposition, never a path", () => {
    expect(filenameFrom('attachment; filename="clients-20261203-101500.csv"', "x.csv")).toBe(
      "clients-20261203-101500.csv",
    );
    expect(filenameFrom("attachment; filename*=UTF-8''%D0%BA.csv", "x.csv")).toBe("к.csv");
    expect(filenameFrom('attachment; filename="../evil.csv"', "x.csv")).toBe("x.csv");
    expect(filenameFrom(null, "x.csv")).toBe("x.csv");
  });
});
