/** The CSV exports of list views: the list's own filters go with them, so the file is what
 * the filtered list shows (an export form of its own started empty and exported everything). */
export interface ListExport {
  path: string;
  permission: string;
  fallbackName: string;
}

export const LIST_EXPORTS: Readonly<Record<string, ListExport>> = {
  "deals.clients": { path: "/api/v1/deals/clients/export", permission: "deals:export", fallbackName: "clients.csv" },
  "deals.list": { path: "/api/v1/deals/deals/export", permission: "deals:export", fallbackName: "deals.csv" },
};

/** The query an export of a list sends: the applied filters, empty ones left out. */
export function exportQuery(filters: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== ""));
}
