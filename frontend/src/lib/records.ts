import { ProblemError } from "@/api/client";
import type { MessageKey } from "@/lib/i18n";

/**
 * What a record's screen says when the record cannot be read for good: a 404 (deleted, or
 * never there) or a 422 about the address itself (`?id=nope`, not an id at all). The server's
 * own text ("path.deal_id: Input should be a valid UUID…") speaks of its parameters, not of
 * what the user did; null for any other failure, whose own message (and Try again) fits.
 */
export function unreadableRecord(error: unknown): MessageKey | null {
  if (!(error instanceof ProblemError)) return null;
  if (error.status === 404 || error.status === 410) return "record.notFound";
  const aboutTheAddress = error.errors.length > 0 && error.errors.every((e) => e.loc[0] === "path");
  if (error.status === 422 && aboutTheAddress) return "record.badLink";
  return null;
}

/**
 * What an edit form says when its save is refused because of the record itself: a 412 (someone
 * else changed it since the form opened) or a 404/410 (it was deleted meanwhile, the server's
 * text naming it by its id); null for any other failure, such as a body's 422 shown by its fields.
 */
export function unsavedRecord(error: unknown): MessageKey | null {
  if (!(error instanceof ProblemError)) return null;
  if (error.status === 412) return "error.conflict";
  if (error.status === 404 || error.status === 410) return "record.deleted";
  return null;
}

/**
 * What a list's row action (Complete …) says when its record was deleted since the list was read:
 * a 404/410 whose server text names the record by its id. null for any other refusal (a 409
 * "already completed", a 403), whose own message fits.
 */
export function unactedRecord(error: unknown): MessageKey | null {
  if (!(error instanceof ProblemError)) return null;
  if (error.status === 404 || error.status === 410) return "record.actionGone";
  return null;
}

/**
 * The If-Match to send back for a record read with `etag`. The server's ETag is the record's
 * `version` (`"v3"`); a proxy that compresses the answer weakens it to `W/"v3"`, and If-Match
 * compares strongly (a weak tag never matches: every save would be a 412). So it is built
 * from the version the body carries, as the board does; without one, the header's own tag.
 */
export function ifMatchFor(etag: string | null, body: Record<string, unknown>): string {
  const version = body.version;
  if (typeof version === "number" && Number.isSafeInteger(version) && version >= 0) return `"v${version}"`;
  return (etag ?? "").replace(/^W\//, "");
}
