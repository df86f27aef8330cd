"""Backup errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import BadRequest, Conflict, NotFound, ServiceUnavailable, Unprocessable


class SetNotFound(NotFound):
    slug, title = "backup-set-not-found", "Backup set not found"


class DrillNotFound(NotFound):
    slug, title = "backup-drill-not-found", "Restore drill not found"


class RunNotFound(NotFound):
    slug, title = "backup-run-not-found", "Backup run not found"


class UnknownTarget(Unprocessable):
    slug, title = "backup-unknown-target", "No such backup target in this deployment"


class SetNotRestorable(Conflict):
    slug, title = "backup-set-not-restorable", "The backup set cannot be restored"


class SetBusy(Conflict):
    slug, title = "backup-set-busy", "The backup set is not complete"


class IntegrityFailed(Conflict):
    slug, title = "backup-integrity-failed", "A backup artefact does not verify"


class SchemaTooNew(Conflict):
    slug, title = "backup-schema-too-new", "The set's schema is newer than the installed code"


class TargetFailed(ServiceUnavailable):
    slug, title = "backup-target-failed", "A backup target's dump or restore failed"


class DrillMismatch(Conflict):
    slug, title = "backup-drill-mismatch", "The restored copy differs from the backup"


class KeyMissing(ServiceUnavailable):
    slug, title = "backup-key-missing", "The backup encryption key is not usable"


class BadTargetAddress(BadRequest):
    slug, title = "backup-bad-target-address", "The restore destination is not usable"


class UnknownDestination(Unprocessable):
    slug, title = "backup-unknown-destination", "No such backup destination in this deployment"


class BackupUnderway(Conflict):
    slug, title = "backup-underway", "Another backup is underway"


class SetAbandoned(Conflict):
    slug, title = "backup-set-abandoned", "The set was marked failed while it was being written"
