/** A list's applied filters live in the page's address (`/clients/?q=ada`): leaving the list
 * and coming back (back, a link, a reload) shows it filtered as it was; component state was
 * lost on every return. Only the view's own filter names are read and written: the page's
 * other parameters (`/view/?key=…`) stay as they are. */

/** The parameters the console's pages read themselves (`/view/?key=…`, `/client/?id=…`). */
export const PAGE_PARAMS: ReadonlySet<string> = new Set(["key", "id"]);
const NAMESPACE = "filter.";
/** The paging parameters every list endpoint takes next to its filters (docs/plugins/authoring.md). */
export const PAGING_PARAMS: ReadonlySet<string> = new Set(["limit", "cursor"]);
export const PAGE_SIZE = 50;

/** The query of one page of a view's list: its applied filters, the page size and the cursor.
 * The API takes the filters and the paging side by side, so they cannot be namespaced: a view
 * filter named `limit` or `cursor` was silently replaced by the console's own value. The server
 * refuses such a view (ConsoleView); a console fed one anyway fails the list with this error
 * rather than show a list that ignores the filter. */
export function listPageQuery(
  names: readonly string[],
  filters: Record<string, string>,
  cursor: string,
): Record<string, string> {
  const clash = names.find((name) => PAGING_PARAMS.has(name));
  if (clash !== undefined) {
    throw new Error(`This view's filter "${clash}" has the name of the list's paging parameter; the view must name it otherwise`);
  }
  return { ...filters, limit: String(PAGE_SIZE), ...(cursor ? { cursor } : {}) };
}

/** Where filter `name` is written in the address: under its own name, but a filter named like
 * a page parameter goes under `filter.<name>`. A view's filter `key` written as `key` replaced
 * the view's own key (`/view/?key=…`), so the page opened another view or none. Names already
 * starting with `filter.` are prefixed too, so no two filters share a parameter. */
export function filterParam(name: string): string {
  return PAGE_PARAMS.has(name) || name.startsWith(NAMESPACE) ? `${NAMESPACE}${name}` : name;
}

/** The applied filters of a view: its filter names that the address gives a value. */
export function filtersFrom(params: Pick<URLSearchParams, "get">, names: readonly string[]): Record<string, string> {
  const filters: Record<string, string> = {};
  for (const name of names) {
    const value = params.get(filterParam(name));
    if (value) filters[name] = value;
  }
  return filters;
}

/** The address's query after applying `chosen`: empty filters left out, other parameters kept. */
export function withFilters(current: string, names: readonly string[], chosen: Record<string, string>): string {
  const params = new URLSearchParams(current);
  for (const name of names) {
    const value = chosen[name] ?? "";
    if (value) params.set(filterParam(name), value);
    else params.delete(filterParam(name));
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}

/** A list's address (`/view/?key=deals.list`) with a query of filters added (`?q=ada`): where a
 * link to the list opens it filtered. The address's own parameters win over the query's. */
export function listHref(list: string, query: string): string {
  if (!query) return list;
  const cut = list.indexOf("?");
  const path = cut < 0 ? list : list.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? "" : list.slice(cut + 1));
  for (const [name, value] of new URLSearchParams(query)) if (!params.has(name)) params.set(name, value);
  const merged = params.toString();
  return merged ? `${path}?${merged}` : path;
}
