"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useRef, useState } from "react";
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, origin, session } from "@/api/client";
import { RequireSection } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { LoadMore } from "@/components/LoadMore";
import { ListError, Pending, RecordMissing } from "@/components/Pending";
import { formatDateTime } from "@/lib/i18n";
import { useCan } from "@/lib/queries";
import { percent, signedUpload, type UploadProgress } from "@/lib/upload";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

const BASE = "/api/v1/documents/documents";

function size(bytes: number, locale: string): string {
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(value)} ${units[unit]}`;
}

/** One document: its versions, a new version uploaded with progress, each version downloadable. */
function DocumentDetail() {
  const id = useSearchParams().get("id") ?? "";
  const t = useT();
  const locale = useUi((s) => s.locale);
  const queryClient = useQueryClient();
  const file = useRef<HTMLInputElement>(null);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [uploading, setUploading] = useState(false);
  const [error, setError] = useState("");
  // a new version needs documents:write (a viewer reads and downloads): no upload it would refuse
  const canUpload = useCan("documents:write");
  const path = { document_id: id };
  const doc = useQuery({
    queryKey: ["documents", "document", id],
    queryFn: async () => ok(await api.GET("/api/v1/documents/documents/{document_id}", { params: { path } })),
    enabled: id !== "",
  });
  // the record's other parts are asked for once the record itself is read: a bad or unknown
  // id answered each of them 422 or 404 too, for nothing
  // a cursor-paginated list, newest first: further pages on demand
  const versions = useInfiniteQuery({
    queryKey: ["documents", "document", id, "versions"],
    queryFn: async ({ pageParam }) =>
      ok(
        await api.GET("/api/v1/documents/documents/{document_id}/versions", {
          params: { path, query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled: doc.isSuccess,
  });
  const versionRows = versions.data?.pages.flatMap((p) => p.items) ?? [];

  async function upload() {
    const chosen = file.current?.files?.[0];
    if (!chosen) {
      // a click with no file did nothing at all: say what is missing and go to the picker
      setError(t("documents.chooseFile"));
      file.current?.focus();
      return;
    }
    setError("");
    setUploading(true);
    setProgress({ loaded: 0, total: chosen.size });
    try {
      await signedUpload(session, {
        url: new URL(`${BASE}/${encodeURIComponent(id)}/versions`, origin).toString(),
        file: chosen,
        filename: chosen.name,
        headers: { "Idempotency-Key": crypto.randomUUID() },
        onProgress: setProgress,
      });
      if (file.current) file.current.value = "";
      await queryClient.invalidateQueries({ queryKey: ["documents"] });
    } catch (err) {
      setError(err instanceof Error ? err.message : t("error.generic"));
    } finally {
      setUploading(false);
    }
  }

  /** A short-lived signed URL: the browser streams the file itself, no token in the URL bar. */
  async function download(version: number) {
    setError("");
    try {
      const { url } = await ok(
        await api.POST("/api/v1/documents/documents/{document_id}/signed-url", {
          params: { path },
          body: { version, expires_in: 60 },
        }),
      );
      const link = document.createElement("a");
      link.href = new URL(url, origin).toString();
      link.download = "";
      document.body.appendChild(link);
      link.click();
      link.remove();
    } catch (err) {
      setError(err instanceof Error ? err.message : t("error.generic"));
    }
  }

  if (!id) return <RecordMissing back="/documents/" label={t("documents.back")} />;
  if (!doc.data) return <Pending query={doc} back={{ href: "/documents/", label: t("documents.back") }} />;
  const d = doc.data;
  const done = percent(progress);
  return (
    <section className="stack" data-testid="document">
      <Link href="/documents/">← {t("documents.back")}</Link>
      <h1>{d.title}</h1>
      <dl className="props">
        <dt>{t("client.kind")}</dt>
        <dd>{d.kind}</dd>
        <dt>{t("client.tags")}</dt>
        <dd>{d.tags.join(", ") || "—"}</dd>
        <dt>{t("documents.updated")}</dt>
        <dd>{formatDateTime(locale, d.updated_at)}</dd>
      </dl>
      {canUpload && (
        <div className="card stack">
          <h2>{t("documents.upload")}</h2>
          <div className="row">
            <label className="field">
              <span>{t("documents.file")}</span>
              <input ref={file} type="file" disabled={uploading} />
            </label>
            <button type="button" onClick={() => void upload()} disabled={uploading}>
              {t("documents.uploadButton")}
            </button>
          </div>
          {progress && (
            <div className="row">
              <progress max={100} value={done} aria-label={t("documents.progress")} data-testid="upload-progress" />
              <span role="status">{uploading ? `${done} %` : t("documents.uploaded")}</span>
            </div>
          )}
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <h2>{t("documents.versions")}</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">{t("documents.file")}</th>
              <th scope="col">{t("documents.size")}</th>
              <th scope="col">{t("documents.uploadedAt")}</th>
              <th scope="col">
                <span className="visually-hidden">{t("documents.download")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {versionRows.map((v) => (
              <tr key={v.id} data-version={v.number}>
                <td>{v.number}</td>
                <td>{v.filename}</td>
                <td>{size(v.size, locale)}</td>
                <td>{formatDateTime(locale, v.uploaded_at)}</td>
                <td>
                  <button
                    type="button"
                    className="ghost"
                    disabled={v.state !== "stored"}
                    aria-label={t("documents.downloadOf", { name: v.filename, number: String(v.number) })}
                    onClick={() => void download(v.number)}
                  >
                    {t("documents.download")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ListError query={versions} />
      <LoadMore list={versions} label={t("documents.versions")} />
      {versions.isSuccess && versionRows.length === 0 && <p className="muted">{t("documents.noFile")}</p>}
    </section>
  );
}

export default function DocumentPage() {
  return (
    <Shell>
      <Suspense>
        <RequireSection screen="documents.list">
          <DocumentDetail />
        </RequireSection>
      </Suspense>
    </Shell>
  );
}
