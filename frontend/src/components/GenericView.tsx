"use client";

import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { getJson, origin, ProblemError, sendJson } from "@/api/client";
import { cellText, coerce, formFields, type FormField, type OpenApiDoc } from "@/lib/forms";
import { formatDateTime } from "@/lib/i18n";
import { viewTitle, type ConsoleViewPublic } from "@/lib/queries";
import { useT } from "@/lib/useT";
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
    queryFn: async () => (await (await fetch(new URL("/openapi.json", origin))).json()) as OpenApiDoc,
    staleTime: Infinity,
  });
}

/** Any plugin's section, from its ConsoleView: filters, a cursor-paged list, a create form. */
export function GenericView({ view }: { view: ConsoleViewPublic }) {
  const t = useT();
  const locale = useUi((s) => s.locale);
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [creating, setCreating] = useState(false);
  const queryKey = [view.stream || view.plugin, "view", view.key, filters];
  const list = useInfiniteQuery({
    queryKey,
    queryFn: async ({ pageParam }) =>
      asPage(await getJson(view.list_path, { ...filters, limit: "50", ...(pageParam ? { cursor: pageParam } : {}) })),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];

  function applyFilters(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setFilters(Object.fromEntries(view.filters.map((f) => [f, String(form.get(f) ?? "")])));
  }

  const show = (column: string, value: unknown) =>
    typeof value === "string" && /_at$/.test(column) && value ? formatDateTime(locale, value) : cellText(value);

  return (
    <section className="stack" data-view={view.key}>
      <div className="row">
        <h1>{viewTitle(view, locale)}</h1>
        <span className="spacer" />
        {view.form.length > 0 && (
          <button type="button" onClick={() => setCreating((c) => !c)}>
            {t("list.create")}
          </button>
        )}
      </div>
      {creating && <CreateForm view={view} onDone={() => setCreating(false)} />}
      {view.filters.length > 0 && (
        <form className="row filters" onSubmit={applyFilters} aria-label={t("list.filter")}>
          {view.filters.map((name) => (
            <label key={name} className="field">
              <span>{name}</span>
              <input name={name} defaultValue={filters[name] ?? ""} />
            </label>
          ))}
          <button type="submit">{t("list.filter")}</button>
        </form>
      )}
      {list.isError && <p className="error">{list.error.message}</p>}
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              {view.columns.map((c) => (
                <th key={c} scope="col">
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {items.map((item, index) => (
              <tr key={String(item.id ?? item.name ?? index)}>
                {view.columns.map((c) => (
                  <td key={c}>{show(c, item[c])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.isPending && <p>{t("loading")}</p>}
      {list.isSuccess && items.length === 0 && <p className="muted">{t("list.empty")}</p>}
      {list.hasNextPage && (
        <button type="button" className="ghost" onClick={() => void list.fetchNextPage()}>
          {t("list.more")}
        </button>
      )}
    </section>
  );
}

function CreateForm({ view, onDone }: { view: ConsoleViewPublic; onDone: () => void }) {
  const t = useT();
  const queryClient = useQueryClient();
  const openapi = useOpenApi();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState("");
  if (!openapi.data) return <p>{t("loading")}</p>;
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
    setErrors({});
    setMessage("");
    try {
      await sendJson("POST", view.list_path, body, { "Idempotency-Key": crypto.randomUUID() });
      await queryClient.invalidateQueries({ queryKey: [view.stream || view.plugin, "view", view.key] });
      onDone();
    } catch (err) {
      if (err instanceof ProblemError) {
        setErrors(err.fieldErrors());
        setMessage(err.detail || err.title);
      } else setMessage(t("error.generic"));
    }
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
        <button type="submit">{t("form.save")}</button>
        <button type="button" className="ghost" onClick={onDone}>
          {t("form.cancel")}
        </button>
      </div>
    </form>
  );
}

function Field({ field, error }: { field: FormField; error?: string }) {
  const id = `field-${field.name}`;
  const common = {
    id,
    name: field.name,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? `${id}-error` : undefined,
  };
  let input;
  if (field.kind === "enum") {
    input = (
      <select {...common} defaultValue="">
        <option value="">—</option>
        {field.options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    );
  } else if (field.kind === "boolean") {
    input = <input {...common} type="checkbox" />;
  } else if (field.kind === "textarea") {
    input = <textarea {...common} maxLength={field.maxLength} />;
  } else {
    const type = { number: "text", date: "date", datetime: "datetime-local" }[field.kind as string] ?? "text";
    input = <input {...common} type={type} maxLength={field.maxLength} />;
  }
  return (
    <div className="field">
      <label htmlFor={id}>
        {field.name}
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
