/** A list's applied filters live in the page's address (`/clients/?q=ada`): leaving the list
 * and coming back (back, a link, a reload) shows it filtered as it was; component state was
 * lost on every return. Only the view's own filter names are read and written: the page's
 * other parameters (`/view/?key=…`) stay as they are. */

/** The applied filters of a view: its filter names that the address gives a value. */
export function filtersFrom(params: Pick<URLSearchParams, "get">, names: readonly string[]): Record<string, string> {
  const filters: Record<string, string> = {};
  for (const name of names) {
    const value = params.get(name);
    if (value) filters[name] = value;
  }
  return filters;
}

/** The address's query after applying `chosen`: empty filters left out, other parameters kept. */
export function withFilters(current: string, names: readonly string[], chosen: Record<string, string>): string {
  const params = new URLSearchParams(current);
  for (const name of names) {
    const value = chosen[name] ?? "";
    if (value) params.set(name, value);
    else params.delete(name);
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}
