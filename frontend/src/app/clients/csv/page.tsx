"use client";

import Link from "next/link";
import { useMemo } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { useStore } from "zustand";
import { origin, session } from "@/api/client";
import { Pending } from "@/components/Pending";
import { RequireSection, SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { useCan, useMe } from "@/lib/queries";
import { uploadImport, type Transfer } from "@/lib/transfer";
import { useT } from "@/lib/useT";
import { canCommit, createImportStore, errorsByRow } from "@/store/importer";

const transfer: Transfer = { fetch: session.fetch, baseUrl: origin };
const IMPORT_PATH = "/api/v1/deals/clients/import";
const COLUMNS = "kind, name, emails, phones, tax_id, address, tags, owner_email";

function Import() {
  const t = useT();
  const queryClient = useQueryClient();
  const store = useMemo(() => {
    const made = createImportStore((file, options) =>
      uploadImport({ ...transfer, onProgress: (p) => made.getState().setProgress(p) }, IMPORT_PATH, file, options),
    );
    return made;
  }, []);
  const state = useStore(store);
  const { phase, preview, check, result } = state;
  const bad = errorsByRow(check);

  async function commit() {
    await state.commit();
    await queryClient.invalidateQueries({ queryKey: ["deals"] });
  }

  return (
    <section className="card stack" aria-labelledby="import-title" data-testid="import">
      <h2 id="import-title">{t("csv.import")}</h2>
      <p className="muted">{t("csv.importHint", { columns: COLUMNS })}</p>
      <label className="field">
        <span>{t("csv.file")}</span>
        <input
          type="file"
          accept=".csv,text/csv"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void state.choose(file, file.name);
          }}
        />
      </label>
      {preview && (
        <div className="table-wrap preview">
          <table>
            <caption>{t("csv.preview", { name: state.name, total: String(preview.total) })}</caption>
            <thead>
              <tr>
                <th scope="col">{t("csv.row")}</th>
                {preview.header.map((h, i) => (
                  <th key={`${h}-${i}`} scope="col">
                    {h}
                  </th>
                ))}
                <th scope="col">{t("csv.reason")}</th>
              </tr>
            </thead>
            <tbody>
              {preview.rows.map((r) => (
                <tr key={r.row} data-row={r.row} className={bad.has(r.row) ? "bad" : undefined}>
                  <th scope="row">{r.row}</th>
                  {preview.header.map((h, i) => (
                    <td key={`${h}-${i}`}>{r.cells[i] ?? ""}</td>
                  ))}
                  <td className="reason">{bad.get(r.row)?.join("; ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {phase === "checking" && <p role="status">{t("csv.checking")}</p>}
      {phase === "importing" && <p role="status">{t("csv.importing")}</p>}
      {state.progress && (phase === "checking" || phase === "importing") && (
        <div className="row">
          <progress
            max={Math.max(1, state.progress.total)}
            value={state.progress.processed}
            aria-label={t("csv.progress")}
          />
          <span>
            {state.progress.processed} / {state.progress.total}
          </span>
        </div>
      )}
      {check && phase !== "done" && (
        <div className="report" data-testid="dry-run">
          <p role="status">
            {t("csv.check", {
              created: String(check.created),
              updated: String(check.updated),
              skipped: String(check.skipped),
              errors: String(check.error_count),
            })}
          </p>
          {check.ignored_columns.length > 0 && (
            <p className="muted" data-testid="ignored-columns">
              {t("csv.ignored", { columns: check.ignored_columns.join(", ") })}
            </p>
          )}
          {check.error_count > 0 && (
            <>
              <table aria-label={t("csv.errors")}>
                <thead>
                  <tr>
                    <th scope="col">{t("csv.row")}</th>
                    <th scope="col">{t("csv.reason")}</th>
                  </tr>
                </thead>
                <tbody>
                  {check.errors.map((e) => (
                    <tr key={`${e.row}-${e.reason}`}>
                      <td>{e.row}</td>
                      <td>{e.reason}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p className="muted">{t("csv.fixFirst")}</p>
              <label className="row">
                <input
                  type="checkbox"
                  checked={state.partial}
                  onChange={(e) => state.setPartial(e.target.checked)}
                />
                {t("csv.partial")}
              </label>
            </>
          )}
          {check.created + check.updated === 0 && <p className="muted">{t("csv.nothing")}</p>}
          <div className="row">
            <button type="button" disabled={!canCommit(state)} onClick={() => void commit()}>
              {t("csv.commit")}
            </button>
          </div>
        </div>
      )}
      {phase === "done" && result && (
        <div className="report" data-testid="imported">
          <p role="status">
            {t("csv.done", {
              created: String(result.created),
              updated: String(result.updated),
              skipped: String(result.skipped),
            })}
          </p>
          {result.error_count > 0 && (
            <p className="muted">{t("csv.skippedRows", { errors: String(result.error_count) })}</p>
          )}
          <div className="row">
            <Link href="/clients/">{t("client.back")}</Link>
          </div>
        </div>
      )}
      {state.error && (
        <p className="error" role="alert">
          {state.error}
        </p>
      )}
    </section>
  );
}

function ClientsCsv() {
  const t = useT();
  const me = useMe();
  const canImport = useCan("deals:import");
  if (!me.data) return <Pending query={me} />;
  // a role without the permission got a titled page with nothing on it and no word why
  if (!canImport) return <SectionUnavailable />;
  // the export is the lists' own button: it takes the filters the list shows, where forms
  // here started empty (and the deals one lacked currency and value)
  return (
    <section className="stack">
      <Link href="/clients/">← {t("client.back")}</Link>
      <h1>{t("csv.title")}</h1>
      <Import />
    </section>
  );
}

export default function ClientsCsvPage() {
  return (
    <Shell>
      <RequireSection screen="deals.clients">
        <ClientsCsv />
      </RequireSection>
    </Shell>
  );
}
