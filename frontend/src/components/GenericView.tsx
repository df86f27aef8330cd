"use client";

import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { Suspense, useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import { getJson, origin, ProblemError, sendJson, session } from "@/api/client";
import { LoadMore } from "@/components/LoadMore";
import { ListError, Pending } from "@/components/Pending";
import { cellText, coerce, fieldLabel, formFields, idempotencyKeys, type FormField, type OpenApiDoc } from "@/lib/forms";
import { LIST_EXPORTS, exportQuery } from "@/lib/exports";
import { formatDateTime } from "@/lib/i18n";
import { filtersFrom, listPageQuery, withFilters } from "@/lib/listFilters";
import { useOneAtATime } from "@/lib/oneAtATime";
import { settleAccepted } from "@/lib/jobs";
import { useCan, viewHref, viewTitle, type ConsoleViewPublic } from "@/lib/queries";
import { downloadCsv, saveBlob } from "@/lib/transfer";
import { ifMatchFor, unactedRecord, unreadableRecord, unsavedRecord } from "@/lib/records";
import { useT } from "@/lib/useT";
import { useLists } from "@/store/lists";
import { useUi } from "@/store/ui";

interface PageBody {
  items: Record<string, unknown>[];
  next_cursor?: string | null;
}

function asPage(body: unknown): PageBody {
  if (Array.isArray(body)) return { items: body as Record<string, unknown>[], next_cursor: null };
  return body as PageBody;
}

function useOpenApi() {
  return useQuery({
    queryKey: ["openapi"],
    queryFn: async () => {
      // a failed read is an error (with Try again), never a problem document taken for the schema
      const response = await fetch(new URL("/openapi.json", origin));
      if (!response.ok) throw await ProblemError.from(response);
      return (await response.json()) as OpenApiDoc;
    },
    staleTime: Infinity,
  });
}

/** What a built-in screen adds around the generic list: links per row, tools above it. */
export interface ViewExtras {
  /** Shown in an extra last column of every row (e.g. a link to the record's own screen). */
  rowExtra?: (item: Record<string, unknown>) => ReactNode;
  rowExtraLabel?: string;
  /** Beside the Create button. */
  toolbar?: ReactNode;
  /** Told the applied filters, from the address and whenever they change (e.g. so an
   * export can use the same ones); a stable function (a state setter). */
  onFilters?: (filters: Record<string, string>) => void;
}

/** Any plugin's section, from its ConsoleView: filters, a cursor-paged list, a create form. */
export function GenericView(props: { view: ConsoleViewPublic; extras?: ViewExtras }) {
  // the filters are read from the address, which a statically exported page knows only in
  // the browser: useSearchParams needs a Suspense boundary there
  return (
    <Suspense>
      <ViewWithFilters {...props} />
    </Suspense>
  );
}

function ViewWithFilters({ view, extras = {} }: { view: ConsoleViewPublic; extras?: ViewExtras }) {
  const t = useT();
  const locale = useUi((s) => s.locale);
  // the applied filters are the address's (back, forward and a reload keep them)
  const params = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const applied = withFilters("", view.filters, filtersFrom(params, view.filters));
  const filters = useMemo(() => filtersFrom(new URLSearchParams(applied), view.filters), [applied, view.filters]);
  const { onFilters } = extras;
  useEffect(() => onFilters?.(filters), [filters, onFilters]);
  // what the navigation's link to this list opens with, in this tab
  const remember = useLists((s) => s.remember);
  const address = viewHref(view);
  useEffect(() => remember(address, applied), [remember, address, applied]);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const queryKey = [view.stream || view.plugin, "view", view.key, filters];
  const list = useInfiniteQuery({
    queryKey,
    queryFn: async ({ pageParam }) =>
      asPage(await getJson(view.list_path, listPageQuery(view.filters, filters, pageParam))),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];
  const canEdit = view.item_path !== "" && view.edit.length > 0;
  const queryClient = useQueryClient();
  const [actionError, setActionError] = useState("");
  // the records with an action under way: their buttons are disabled, and a click in the same
  // frame (before React re-rendered) is dropped. A double click on Complete sent it twice (the
  // second met a 409), and on a restore drill started two drills.
  const acting = useRef(new Set<string>());
  const [busyIds, setBusyIds] = useState<ReadonlySet<string>>(() => new Set());
  const listExport = LIST_EXPORTS[view.key];
  const canExport = useCan(listExport?.permission ?? "");
  // one export at a time: a double click downloaded the file twice
  const [exporting, exportOnce] = useOneAtATime();

  async function exportCsv() {
    if (!listExport) return;
    await exportOnce(async () => {
      setActionError("");
      try {
        const transfer = { fetch: session.fetch, baseUrl: origin };
        // the filters the list shows, as applied: the file is what the user sees
        const query = exportQuery(filters);
        const { name, blob } = await downloadCsv(transfer, listExport.path, query, listExport.fallbackName);
        saveBlob(name, blob);
      } catch (err) {
        setActionError(err instanceof Error ? err.message : t("error.generic"));
      }
    });
  }

  async function act(action: string, id: string) {
    if (acting.current.has(id)) return;
    acting.current.add(id);
    setBusyIds(new Set(acting.current));
    try {
      await runAction(action, id);
    } finally {
      acting.current.delete(id);
      setBusyIds(new Set(acting.current));
    }
  }

  async function runAction(action: string, id: string) {
    setActionError("");
    const path = `${view.item_path.replace("{id}", encodeURIComponent(id))}/${action}`;
    try {
      const response = await session.fetch(new Request(new URL(path, origin), { method: "POST" }));
      if (!response.ok) throw await ProblemError.from(response);
      await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin] });
      if (response.status === 202) {
        // accepted: a background job (a restore drill …) polled at its Location until done
        const last = await settleAccepted(response, { fetch: session.fetch, origin, problem: ProblemError.from });
        await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin] });
        if (last?.error) setActionError(last.error);
      }
    } catch (err) {
      // a record deleted since the list was read: say so in words (the server's text names it
      // by its id), and read the list again so the row goes away
      const gone = unactedRecord(err);
      if (gone) {
        setActionError(t(gone));
        await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin] });
      } else setActionError(err instanceof Error ? err.message : t("error.generic"));
    }
  }

  function applyFilters(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const chosen = Object.fromEntries(view.filters.map((f) => [f, String(form.get(f) ?? "")]));
    router.replace(`${pathname}${withFilters(params.toString(), view.filters, chosen)}`, { scroll: false });
  }

  function clearFilters() {
    router.replace(`${pathname}${withFilters(params.toString(), view.filters, {})}`, { scroll: false });
  }

  const show = (column: string, value: unknown) =>
    typeof value === "string" && /_at$/.test(column) && value ? formatDateTime(locale, value) : cellText(value);

  return (
    <section className="stack" data-view={view.key}>
      <div className="row">
        <h1>{viewTitle(view, locale)}</h1>
        <span className="spacer" />
        {extras.toolbar}
        {listExport && canExport && (
          <button type="button" className="ghost" disabled={exporting} onClick={() => void exportCsv()}>
            {t("list.export")}
          </button>
        )}
        {view.form.length > 0 && (
          <button type="button" onClick={() => setCreating((c) => !c)}>
            {t("list.create")}
          </button>
        )}
      </div>
      {creating && <CreateForm view={view} onDone={() => setCreating(false)} />}
      {editing && (
        <EditForm key={editing} view={view} id={editing} onDone={() => setEditing(null)} />
      )}
      {view.filters.length > 0 && (
        // keyed by the applied filters: the inputs show the address's, when it changes too
        <form key={applied} className="row filters" onSubmit={applyFilters} aria-label={t("list.filter")}>
          {view.filters.map((name) => (
            <label key={name} className="field">
              <span>{fieldLabel(name)}</span>
              <input name={name} defaultValue={filters[name] ?? ""} />
            </label>
          ))}
          <button type="submit">{t("list.filter")}</button>
          {applied && (
            <button type="button" className="ghost" onClick={clearFilters}>
              {t("list.clearFilters")}
            </button>
          )}
        </form>
      )}
      <ListError query={list} />
      {actionError && (
        <p className="error" role="alert">
          {actionError}
        </p>
      )}
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              {view.columns.map((c) => (
                <th key={c} scope="col">
                  {fieldLabel(c)}
                </th>
              ))}
              {view.actions.length > 0 && (
                <th scope="col">
                  <span className="visually-hidden">{t("list.actions")}</span>
                </th>
              )}
              {extras.rowExtra && (
                <th scope="col">
                  <span className="visually-hidden">{extras.rowExtraLabel ?? t("list.actions")}</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {items.map((item, index) => (
              <tr key={String(item[view.id_field] ?? index)}>
                {view.columns.map((c, i) => (
                  <td key={c}>
                    {i === 0 && canEdit && typeof item[view.id_field] === "string" ? (
                      <button
                        type="button"
                        className="link"
                        onClick={() => setEditing(String(item[view.id_field]))}
                      >
                        {show(c, item[c]) || "—"}
                      </button>
                    ) : (
                      show(c, item[c])
                    )}
                  </td>
                ))}
                {view.actions.length > 0 && (
                  <td>
                    {view.actions.map((action) => (
                      <button
                        key={action}
                        type="button"
                        className="ghost"
                        aria-label={`${fieldLabel(action)}: ${cellText(item[view.columns[0] ?? view.id_field])}`}
                        disabled={busyIds.has(String(item[view.id_field]))}
                        onClick={() => void act(action, String(item[view.id_field]))}
                      >
                        {fieldLabel(action)}
                      </button>
                    ))}
                  </td>
                )}
                {extras.rowExtra && <td>{extras.rowExtra(item)}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.isPending && <p>{t("loading")}</p>}
      {list.isSuccess && items.length === 0 && <p className="muted">{t("list.empty")}</p>}
      <LoadMore list={list} label={viewTitle(view, locale)} />
    </section>
  );
}

function CreateForm({ view, onDone }: { view: ConsoleViewPublic; onDone: () => void }) {
  const t = useT();
  const queryClient = useQueryClient();
  const openapi = useOpenApi();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState("");
  // one create at a time, and one key per body: a double click on Save makes one record
  const [busy, saving] = useOneAtATime();
  const keyFor = useRef(idempotencyKeys()).current;
  if (!openapi.data) return <Pending query={openapi} />;
  const fields = formFields(openapi.data, view.create_schema, view.form);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body: Record<string, unknown> = {};
    for (const field of fields) {
      const raw = field.kind === "boolean" ? form.get(field.name) === "on" : String(form.get(field.name) ?? "");
      const value = coerce(field, raw);
      if (value !== undefined) body[field.name] = value;
    }
    await saving(async () => {
      setErrors({});
      setMessage("");
      try {
        await sendJson("POST", view.create_path, body, { "Idempotency-Key": keyFor(body) });
        await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin, "view", view.key] });
        onDone();
      } catch (err) {
        if (err instanceof ProblemError) {
          setErrors(err.fieldErrors());
          setMessage(err.detail || err.title);
        } else setMessage(t("error.generic"));
      }
    });
  }

  return (
    <form className="card stack" onSubmit={submit} aria-label={t("list.create")} noValidate>
      {fields.map((field) => (
        <Field key={field.name} field={field} error={errors[field.name]} />
      ))}
      {message && (
        <p className="error" role="alert">
          {message}
        </p>
      )}
      <div className="row">
        <button type="submit" disabled={busy}>{t("form.save")}</button>
        <button type="button" className="ghost" onClick={onDone}>
          {t("form.cancel")}
        </button>
      </div>
    </form>
  );
}

/** Edit a record with If-Match: a 412 says someone else changed it meanwhile. */
function EditForm({ view, id, onDone }: { view: ConsoleViewPublic; id: string; onDone: () => void }) {
  const t = useT();
  const queryClient = useQueryClient();
  const openapi = useOpenApi();
  const path = view.item_path.replace("{id}", encodeURIComponent(id));
  const record = useQuery({
    queryKey: [view.stream || view.plugin, "record", view.key, id],
    queryFn: async () => {
      const response = await session.fetch(new Request(new URL(path, origin)));
      if (!response.ok) throw await ProblemError.from(response);
      const body = (await response.json()) as Record<string, unknown>;
      return { etag: ifMatchFor(response.headers.get("ETag"), body), body };
    },
    staleTime: Infinity,
    // opened again, the form asks for the record as it is now: the cache holds it as it was
    refetchOnMount: "always",
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState("");
  // The record as the form opened it (or as Reload brought it): every event of the view's
  // stream refetches the record query, and saving with the refetched ETag would overwrite
  // another user's change that the form never showed instead of meeting the 412. Only an
  // answer fetched since the form opened counts: the copy cached by an earlier opening may
  // predate a change, and saving it was a 412 for a change made before the form was open.
  const [opened, setOpened] = useState<typeof record.data>(undefined);
  const fresh = record.isFetchedAfterMount && !record.isFetching && !record.isError ? record.data : undefined;
  useEffect(() => {
    if (opened === undefined && fresh !== undefined) setOpened(fresh);
  }, [opened, fresh]);
  const shown = opened;
  // one save at a time: a double click's second PATCH carried the ETag the first had spent (412)
  const [busy, saving] = useOneAtATime();
  if (record.isError && !shown) {
    // a record gone (404) says so in words, not the server's "no thing <uuid>"
    const unreadable = unreadableRecord(record.error);
    return (
      <div className="card stack">
        <p className="error" role="alert">
          {unreadable ? t(unreadable) : record.error.message}
        </p>
        <div className="row">
          <button type="button" className="ghost" onClick={onDone}>
            {t("form.cancel")}
          </button>
        </div>
      </div>
    );
  }
  if (!openapi.data) return <Pending query={openapi} />;
  if (!shown) return <p>{t("loading")}</p>;
  const fields = formFields(openapi.data, view.update_schema, view.edit);
  const { etag, body: current } = shown;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body: Record<string, unknown> = {};
    for (const field of fields) {
      const raw = field.kind === "boolean" ? form.get(field.name) === "on" : String(form.get(field.name) ?? "");
      const value = coerce(field, raw);
      if (value !== undefined) body[field.name] = value;
    }
    await saving(async () => {
      setErrors({});
      setMessage("");
      try {
        await sendJson("PATCH", path, body, { "If-Match": etag });
        await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin] });
        onDone();
      } catch (err) {
        const gone = unsavedRecord(err);
        if (gone) {
          setMessage(t(gone));
          // changed or deleted by someone else: the list behind the form read it before, and a
          // view without a stream (or with its stream reconnecting) kept showing it as it was
          await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin, "view", view.key] });
        } else if (err instanceof ProblemError) {
          setErrors(err.fieldErrors());
          setMessage(err.detail || err.title);
        } else setMessage(t("error.generic"));
      }
    });
  }

  return (
    <form className="card stack" onSubmit={submit} aria-label={t("form.edit")} noValidate>
      {fields.map((field) => (
        // keyed by the ETag: after Reload the inputs show the record as it now is (uncontrolled
        // inputs ignore a new defaultValue once typed in, and a save would then overwrite the
        // other user's change unseen)
        <Field key={`${field.name}@${etag}`} field={field} error={errors[field.name]} initial={current[field.name]} />
      ))}
      {message && (
        <p className="error" role="alert">
          {message}
        </p>
      )}
      <div className="row">
        <button type="submit" disabled={busy}>
          {t("form.save")}
        </button>
        <button
          type="button"
          className="ghost"
          disabled={busy}
          onClick={() => {
            setMessage("");
            void record.refetch().then((fresh) => {
              // a failed read keeps the old data: the form must not look reloaded (a record
              // deleted after a 412 reloaded silently into the same stale form)
              if (fresh.isError) {
                const unreadable = unreadableRecord(fresh.error);
                setMessage(unreadable ? t(unreadable) : fresh.error.message);
              } else if (fresh.data) setOpened(fresh.data);
            });
          }}
        >
          {t("form.reload")}
        </button>
        <button type="button" className="ghost" onClick={onDone}>
          {t("form.cancel")}
        </button>
      </div>
    </form>
  );
}

function Field({ field, error, initial }: { field: FormField; error?: string; initial?: unknown }) {
  const id = `field-${field.name}`;
  const start = initial === undefined || initial === null ? "" : cellText(initial);
  const common = {
    id,
    name: field.name,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? `${id}-error` : undefined,
  };
  let input;
  if (field.kind === "enum") {
    input = (
      <select {...common} defaultValue={start}>
        <option value="">—</option>
        {field.options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    );
  } else if (field.kind === "boolean") {
    input = <input {...common} type="checkbox" defaultChecked={initial === true} />;
  } else if (field.kind === "textarea") {
    input = <textarea {...common} maxLength={field.maxLength} defaultValue={start} />;
  } else {
    const type = { number: "text", date: "date", datetime: "datetime-local" }[field.kind as string] ?? "text";
    input = <input {...common} type={type} maxLength={field.maxLength} defaultValue={start} />;
  }
  return (
    <div className="field">
      <label htmlFor={id}>
        {fieldLabel(field.name)}
        {field.required && " *"}
        {field.kind === "list" && <small className="muted"> (a, b, c)</small>}
      </label>
      {input}
      {error && (
        <span id={`${id}-error`} className="error">
          {error}
        </span>
      )}
    </div>
  );
}
