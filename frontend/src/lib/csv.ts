/**
 * CSV for the import screen's preview: RFC 4180 (quotes, doubled quotes, newlines inside
 * quotes, CRLF), a UTF-8 BOM dropped, numbered as the server numbers rows (the header is
 * row 1; blank lines are not rows), so the server's per-row errors land on the right row.
 */

export interface PreviewRow {
  /** The spreadsheet row the server's report names (header = 1). */
  row: number;
  cells: string[];
}

export interface CsvPreview {
  header: string[];
  rows: PreviewRow[];
  /** Data rows in the whole file (not only the previewed ones). */
  total: number;
}

/** Every record of a CSV text; a record is an array of its fields. Blank lines are left out. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRecord = () => {
    record.push(field);
    field = "";
    if (!(record.length === 1 && record[0] === "")) records.push(record);
    record = [];
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === "") quoted = true;
    else if (ch === ",") {
      record.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRecord();
    } else field += ch;
  }
  if (field !== "" || record.length > 0) endRecord();
  return records;
}

/** The header and the first `limit` data rows, with the server's row numbers. */
export function csvPreview(text: string, limit = 10): CsvPreview {
  const [header = [], ...data] = parseCsv(text);
  const rows = data
    .map((cells, index) => ({ row: index + 2, cells }))
    .filter((r) => r.cells.some((c) => c.trim() !== ""));
  return {
    header: header.map((h) => h.trim().toLowerCase()),
    rows: rows.slice(0, limit),
    total: rows.length,
  };
}

/** `filename="clients-20261203-101500.csv"` from a Content-Disposition header, or the fallback. */
export function filenameFrom(contentDisposition: string | null, fallback: string): string {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(contentDisposition ?? "");
  const name = match?.[1] ? decodeURIComponent(match[1]) : "";
  return name && !/[\\/]/.test(name) ? name : fallback;
}
