"use client";

import Link from "next/link";
import { mayPassLater } from "@/api/client";
import { unreadableRecord } from "@/lib/records";
import { useT } from "@/lib/useT";

/** The part of a query a screen waits on: its error, and a way to ask again. */
interface Awaited {
  isError: boolean;
  error: Error | null;
  refetch: () => unknown;
}

/**
 * What a screen shows while the query it needs has no data: "Loading…", or once the query has
 * failed its error, with a Try again when asking again may help (not after a 404 or a 422).
 * Screens that showed "Loading…" until data came stayed on it for good when the read failed
 * (the server down, a 500, the network gone).
 */
export function Pending({ query, back }: { query: Awaited; back?: { href: string; label: string } }) {
  const t = useT();
  if (!query.isError) return <p>{t("loading")}</p>;
  // a record's screen whose record is not there (404) or whose address names none (422):
  // a sentence for the user and the way back, not the server's text about its parameters
  const unreadable = back ? unreadableRecord(query.error) : null;
  return (
    <section className="stack" data-testid="pending-error">
      <p className="error" role="alert">
        {unreadable ? t(unreadable) : query.error?.message || t("error.generic")}
      </p>
      {unreadable && back && <Link href={back.href}>← {back.label}</Link>}
      {mayPassLater(query.error) && (
        <div className="row">
          <button type="button" onClick={() => void query.refetch()}>
            {t("retry")}
          </button>
        </div>
      )}
    </section>
  );
}

/**
 * A record's screen opened without `?id=` (a hand-typed or cut address): there is nothing to
 * read, so say so and lead back to the list (the query, never enabled, showed "Loading…" forever).
 */
export function RecordMissing({ back, label }: { back: string; label: string }) {
  const t = useT();
  return (
    <section className="stack" data-testid="record-missing">
      <p className="error" role="alert">
        {t("record.missing")}
      </p>
      <Link href={back}>← {label}</Link>
    </section>
  );
}

/**
 * A part of a screen that failed to read (a list, a feed, a timeline) while the rest stands: its
 * error, announced (role=alert) like every other error of the console, or nothing.
 */
export function ListError({ query }: { query: Awaited }) {
  const t = useT();
  if (!query.isError) return null;
  return (
    <p className="error" role="alert">
      {query.error?.message || t("error.generic")}
    </p>
  );
}
