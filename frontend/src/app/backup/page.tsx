"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { getJson, origin, ProblemError, session } from "@/api/client";
import { GenericView } from "@/components/GenericView";
import { SectionUnavailable } from "@/components/SectionUnavailable";
import { Shell } from "@/components/Shell";
import { ListError, Pending } from "@/components/Pending";
import { backUpNow, duration, futureDated, type BackupSet } from "@/lib/backup";
import { formatDateTime } from "@/lib/i18n";
import { useCan, useViews } from "@/lib/queries";
import { useT } from "@/lib/useT";
import { useUi } from "@/store/ui";

interface SetSummary {
  id: string;
  status: string;
  finished_at: string | null;
  started_at: string;
}

interface BackupStatus {
  latest_set: SetSummary | null;
  latest_verified_set: SetSummary | null;
  rpo_seconds: number | null;
  last_drill: { ok: boolean; rto_seconds: number; finished_at: string } | null;
  schedule: string;
  verify_schedule: string;
}

/** The marker of a set dated ahead of the server's clock: why it is listed first yet not the latest. */
function FutureDated() {
  const t = useT();
  return (
    <span className="error" data-testid="future-dated" title={t("backup.futureDatedHint")}>
      {t("backup.futureDated")}
    </span>
  );
}

/** Backups: what an operator watches (latest set, RPO, last drill's RTO), back up now, the sets. */
function Backup() {
  const t = useT();
  const locale = useUi((s) => s.locale);
  const queryClient = useQueryClient();
  const views = useViews();
  const canRun = useCan("backup:run");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [made, setMade] = useState<BackupSet | null>(null);
  // read only while the section is open to the user: a role without backup:read was sent
  // the request anyway (a 403 on every visit, and a re-read of the permissions after it)
  const open = views.data?.views.some((v) => v.screen === "backup.sets") === true;
  const status = useQuery({
    queryKey: ["backup", "status"],
    queryFn: async () => (await getJson("/api/v1/backup/status")) as BackupStatus,
    enabled: open,
  });

  async function post(path: string) {
    setBusy(true);
    setError("");
    try {
      if (path === "/api/v1/backup/sets") {
        setMade(null);
        // 201: the set is written; 202: it is polled until it is no longer queued or running
        await backUpNow({ fetch: session.fetch, origin, problem: ProblemError.from, onProgress: setMade });
      } else {
        const response = await session.fetch(new Request(new URL(path, origin), { method: "POST" }));
        if (!response.ok) throw await ProblemError.from(response);
      }
    } catch (err) {
      setError(err instanceof Error ? err.message : t("error.generic"));
    } finally {
      setBusy(false);
      await queryClient.invalidateQueries({ queryKey: ["backup"] });
    }
  }

  if (!views.data) return <Pending query={views} />;
  const view = views.data.views.find((v) => v.screen === "backup.sets");
  if (!view) return <SectionUnavailable />;
  const s = status.data;
  return (
    <div className="stack">
      <section className="card stack" aria-labelledby="backup-status" data-testid="backup-status">
        <div className="row">
          <h2 id="backup-status">{t("backup.status")}</h2>
          <span className="spacer" />
          {canRun && (
            <>
              <button type="button" disabled={busy} onClick={() => void post("/api/v1/backup/sets")}>
                {t("backup.now")}
              </button>
              <button type="button" className="ghost" disabled={busy} onClick={() => void post("/api/v1/backup/prune")}>
                {t("backup.prune")}
              </button>
            </>
          )}
        </div>
        {busy && <p role="status">{t("backup.running")}</p>}
        {made && (
          <p role="status" data-testid="backup-result" data-status={made.state ?? made.status}>
            {t("backup.result", { when: formatDateTime(locale, made.started_at), status: made.state ?? made.status })}
            {made.error ? ` · ${made.error}` : ""}
            {futureDated(made) && <> · <FutureDated /></>}
          </p>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <ListError query={status} />
        {s && (
          <dl className="props">
            <dt>{t("backup.latest")}</dt>
            <dd>{s.latest_set ? `${formatDateTime(locale, s.latest_set.started_at)} · ${s.latest_set.status}` : "—"}</dd>
            <dt>{t("backup.rpo")}</dt>
            <dd data-testid="rpo">{duration(s.rpo_seconds, locale)}</dd>
            <dt>{t("backup.drill")}</dt>
            <dd>
              {s.last_drill
                ? `${s.last_drill.ok ? "✓" : "✗"} ${formatDateTime(locale, s.last_drill.finished_at)} · RTO ${duration(s.last_drill.rto_seconds, locale)}`
                : "—"}
            </dd>
            <dt>{t("backup.schedule")}</dt>
            <dd>
              {s.schedule || "—"} / {s.verify_schedule || "—"}
            </dd>
          </dl>
        )}
      </section>
      <GenericView
        view={view}
        extras={{ rowExtra: (item) => (futureDated(item) ? <FutureDated /> : null), rowExtraLabel: t("backup.flags") }}
      />
    </div>
  );
}

export default function BackupPage() {
  return (
    <Shell>
      <Backup />
    </Shell>
  );
}
