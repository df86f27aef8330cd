"""Running a backup: every chosen target dumped, encrypted, checksummed, recorded as one set."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from crm2_backup import crypto
from crm2_backup.config import BackupSettings
from crm2_backup.errors import BackupUnderway, SetAbandoned
from crm2_backup.events import SetCompleted, SetFailed, SetRequested
from crm2_backup.models import BackupArtifact, BackupRun, BackupSet
from crm2_backup.repository import (
    backup_run_id,
    claim_set,
    finish_run,
    finish_running_run,
    get_set,
    note_late_run,
    update_set,
)
from crm2_backup.service import destinations, store
from crm2_backup.service.keys import load_key
from crm2_backup.service.locks import SET_REQUESTS
from crm2_backup.service.schema import alembic_heads
from crm2_backup.service.stale import set_underway
from crm2_backup.service.targets import chosen_targets
from crm2_core.api import AppContext, Crm2Error, publish, take_turns, utcnow

log = logging.getLogger("crm2.backup")
Progress = Callable[[str, str], None]  # (target, phase)


def _versions(context: Any) -> dict[str, str]:
    if not isinstance(context, AppContext):
        return {}
    return {s.name: s.version for s in context.plugins.statuses() if s.enabled}


def _error_text(exc: BaseException) -> str:
    text = exc.detail if isinstance(exc, Crm2Error) and exc.detail else str(exc)
    return f"{type(exc).__name__}: {text}"[:2000]


def new_progress(names: list[str], verify: bool = False) -> dict[str, Any]:
    """Every target ``pending`` (and the drill, when one was asked for)."""
    return {
        "targets": [{"target": n, "phase": "pending", "size_bytes": None} for n in names],
        "verify": "pending" if verify else None,
    }


def new_set(
    trigger: str,
    due_key: str | None,
    actor_id: uuid.UUID | None,
    status: str,
    progress: dict[str, Any] | None = None,
) -> BackupSet:
    set_id = uuid.uuid4()
    started = utcnow()
    return BackupSet(
        id=set_id,
        status=status,
        trigger=trigger,
        due_key=due_key,
        location=f"{started:%Y%m%dT%H%M%SZ}-{set_id.hex[:12]}",
        started_at=started,
        created_by=actor_id,
        progress=progress or {},
    )


class _Tracker:
    """The set's ``progress`` column, rewritten as each target moves (one writer: this run)."""

    def __init__(self, context: Any, row: BackupSet, names: list[str]) -> None:
        self.context, self.set_id = context, row.id
        self.doc: dict[str, Any] = dict(row.progress or {})
        known = {t["target"]: t for t in self.doc.get("targets", [])}
        self.doc["targets"] = [
            known.get(n) or {"target": n, "phase": "pending", "size_bytes": None} for n in names
        ]
        self.doc.setdefault("verify", None)

    async def mark(self, name: str, phase: str, size_bytes: int | None = None) -> None:
        for item in self.doc["targets"]:
            if item["target"] == name:
                item["phase"] = phase
                if size_bytes is not None:
                    item["size_bytes"] = size_bytes
        await self.save()

    async def save(self) -> None:
        async with self.context.session_factory() as session:
            # only while running: a set the stale sweep failed keeps its failed progress
            await update_set(session, self.set_id, only_if="running", progress=self.doc)
            await session.commit()


async def request_backup(context: Any, due_key: str) -> uuid.UUID | None:
    """A queued scheduled set and its ``backup.set.requested``, in one transaction.

    ``None`` when another process already queued this due time (the unique ``due_key``),
    or while another set is underway: one backup at a time, as ``POST /sets``; the due
    time is queued by a later tick (within the catch-up window) once that set is done.
    """
    row = new_set("schedule", due_key, None, "queued")
    async with context.session_factory() as session:
        await take_turns(session, SET_REQUESTS)
        if await set_underway(session, context.plugin_settings("backup")) is not None:
            return None
        session.add(row)
        publish(session, SetRequested(set_id=row.id, due_key=due_key), subject=row.id)
        try:
            await session.commit()
        except IntegrityError:
            return None
    return row.id


async def _start(
    context: Any, set_id: uuid.UUID | None, trigger: str, actor_id: uuid.UUID | None
) -> BackupSet | None:
    """The set to fill: a new running one, or the queued ``set_id`` claimed (``None``: taken).

    A new set (``crm2 backup run``) obeys the rule the schedule and ``POST /sets`` obey:
    one backup at a time. While a set is queued or running it is refused with that set's
    id (:class:`BackupUnderway`), checked and inserted under the same turn-taking lock.
    """
    async with context.session_factory() as session:
        if set_id is None:
            await take_turns(session, SET_REQUESTS)
            current = await set_underway(session, context.plugin_settings("backup"))
            if current is not None:
                raise BackupUnderway(
                    f"set {current.id} is {current.status} (since "
                    f"{current.started_at:%Y-%m-%d %H:%M:%S}Z): one backup at a time; "
                    "wait for it to finish (crm2 backup list)"
                )
            row = new_set(trigger, None, actor_id, "running")
            session.add(row)
        elif not await claim_set(session, set_id):
            return None
        else:
            row = await get_set(session, set_id)
        session.add(
            BackupRun(
                kind="backup", set_id=row.id, status="running", detail={"trigger": row.trigger}
            )
        )
        await session.commit()
        await session.refresh(row)
    return row


async def run_backup(
    context: Any,
    *,
    set_id: uuid.UUID | None = None,
    trigger: str = "manual",
    actor_id: uuid.UUID | None = None,
    progress: Progress | None = None,
) -> BackupSet | None:
    """Back up every chosen target into a new set (or the queued ``set_id``).

    Returns the ``completed`` set; a failure marks it ``failed``, announces
    ``backup.set.failed`` and raises. ``None`` when the queued set was taken already.
    """
    settings: BackupSettings = context.plugin_settings("backup")
    if set_id is None:
        # a new set (``crm2 backup run``): a misspelt target or destination is refused
        # before a set, a failed run and an admin incident are recorded, as ``POST /sets``
        # refuses it (422) before queueing anything
        chosen_targets(context)
        destinations.configured(context)
    row = await _start(context, set_id, trigger, actor_id)
    if row is None:
        return None
    clock = time.monotonic()
    folder = store.set_dir(settings, row.location)
    artifacts: list[BackupArtifact] = []
    tracker: _Tracker | None = None
    current = ""
    try:
        # inside the try: a folder that cannot be made fails the set now, instead of
        # leaving it running (and answering every POST /sets) until the stale job
        folder.mkdir(parents=True, exist_ok=True)
        key = load_key(settings, create=True)
        remote = destinations.configured(context)  # an unknown name fails before any dump
        targets = chosen_targets(context)
        tracker = _Tracker(context, row, list(targets))
        await tracker.save()
        with tempfile.TemporaryDirectory(prefix="crm2-backup-") as scratch:
            for name, target in targets.items():
                current = name
                artifact = await _one(
                    target, name, key, settings, Path(scratch), folder, row.id, progress, tracker
                )
                artifacts.append(artifact)
                await tracker.mark(name, "done", artifact.size_bytes)
    except BaseException as exc:  # every failure (a time limit too) is recorded, then re-raised
        if tracker is not None and current:
            tracker.doc["targets"] = [
                {**t, "phase": "failed"} if t["target"] == current else t
                for t in tracker.doc["targets"]
            ]
        failed_here = await _fail(
            context, row, exc, artifacts, None if tracker is None else tracker.doc
        )
        if not failed_here and isinstance(exc, Exception):
            # most likely because the sweep deleted the folder under it: say that, not ENOENT
            raise SetAbandoned(
                f"set {row.id} was marked failed by the stale job while this run was still "
                f"writing it (its files are deleted; this run then stopped: {_error_text(exc)}): "
                "take a new backup"
            ) from exc
        raise
    return await _complete(context, row, artifacts, time.monotonic() - clock, remote)


async def _one(
    target: Any,
    name: str,
    key: bytes,
    settings: BackupSettings,
    scratch: Path,
    folder: Path,
    set_id: uuid.UUID,
    progress: Progress | None,
    tracker: _Tracker,
) -> BackupArtifact:
    started = utcnow()
    plain = scratch / f"{name}{target.extension}"
    if progress:
        progress(name, "dump")
    await tracker.mark(name, "dumping")
    facts = dict(await target.dump(plain))
    if progress:
        progress(name, "encrypt")
    await tracker.mark(name, "encrypting")
    filename = f"{name}{target.extension}.enc"
    plain_sha = await asyncio.to_thread(crypto.sha256_file, plain)
    plain_size = plain.stat().st_size
    size, sha = await asyncio.to_thread(
        crypto.encrypt_file, key, plain, folder / filename, settings.chunk_bytes
    )
    plain.unlink()
    return BackupArtifact(
        set_id=set_id,
        target=name,
        filename=filename,
        size_bytes=size,
        sha256=sha,
        plain_size_bytes=plain_size,
        plain_sha256=plain_sha,
        facts=facts,
        started_at=started,
        finished_at=utcnow(),
    )


def manifest_of(
    context: Any, row: BackupSet, artifacts: list[BackupArtifact], finished: datetime, key_id: str
) -> dict[str, Any]:
    heads: dict[str, list[str]] = {}
    for artifact in artifacts:
        heads.update(alembic_heads(artifact.facts))
    return {
        "format": 1,
        "set_id": str(row.id),
        "trigger": row.trigger,
        "started_at": row.started_at.isoformat(),
        "finished_at": finished.isoformat(),
        "versions": _versions(context),
        "alembic_heads": heads,
        "encryption": {"cipher": "AES-256-GCM", "chunked": True, "key_id": key_id},
        "artifacts": [
            {
                "target": a.target,
                "file": a.filename,
                "size_bytes": a.size_bytes,
                "sha256": a.sha256,
                "plain_size_bytes": a.plain_size_bytes,
                "plain_sha256": a.plain_sha256,
                "facts": a.facts,
            }
            for a in artifacts
        ],
    }


async def _complete(
    context: Any,
    row: BackupSet,
    artifacts: list[BackupArtifact],
    seconds: float,
    remote: Any | None = None,
) -> BackupSet:
    settings: BackupSettings = context.plugin_settings("backup")
    finished = utcnow()
    key_id = crypto.key_id(load_key(settings)).hex()
    manifest = manifest_of(context, row, artifacts, finished, key_id)
    manifest["destination"] = destinations.LOCAL if remote is None else remote.name
    folder = store.set_dir(settings, row.location)
    try:  # a manifest the folder cannot take (a full disk) fails the set like an upload
        store.write_manifest(folder, manifest)
        # the set is completed only once its destination holds it; the manifest is
        # recorded first, so that whoever fails the set deletes what was copied there.
        # Not recorded: the stale sweep failed the set meanwhile (the update below says so)
        if remote is not None and await _record_manifest(context, row.id, manifest):
            files = [a.filename for a in artifacts] + [destinations.MANIFEST]
            await destinations.upload(remote, row.location, folder, files)
    except BaseException as exc:
        await _fail(context, row, exc, artifacts, None)
        raise
    total = sum(a.size_bytes for a in artifacts)
    names = [a.target for a in artifacts]
    async with context.session_factory() as session:
        if not await update_set(
            session,
            row.id,
            only_if="running",
            status="completed",
            finished_at=finished,
            size_bytes=total,
            manifest=manifest,
            targets=names,
        ):
            return await _late(context, session, row, names, total, finished)
        session.add_all(artifacts)
        run = await backup_run_id(session, row.id)
        await finish_run(
            session, run, "ok", {"targets": names, "size_bytes": total, "seconds": seconds}
        )
        publish(
            session,
            SetCompleted(
                set_id=row.id, trigger=row.trigger, targets=names, size_bytes=total, seconds=seconds
            ),
            subject=row.id,
        )
        await session.commit()
        done = await get_set(session, row.id)
    log.info("backup: set %s completed (%d bytes, %.1f s)", row.id, total, seconds)
    return done


async def _record_manifest(context: Any, set_id: uuid.UUID, manifest: dict[str, Any]) -> bool:
    """The manifest on the still-running set's row (what a destination will hold): written?"""
    async with context.session_factory() as session:
        recorded = await update_set(session, set_id, only_if="running", manifest=manifest)
        await session.commit()
    return recorded


async def _late(
    context: Any,
    session: Any,
    row: BackupSet,
    names: list[str],
    total: int,
    finished: datetime,
) -> BackupSet:
    """The set was marked failed (stale) while this run was still writing it: it stays failed.

    A set the sweep failed was announced failed and may have been replaced by a newer
    one; flipping it to completed afterwards would contradict that notice silently.
    The set is not restorable, so its files are deleted as a failed set's are: the error
    says it finished late and when, the run records the same; no event.
    """
    current = await get_set(session, row.id)
    note = (
        f"; the run then finished late at {finished.isoformat()} ({len(names)} targets, "
        f"{total} bytes) after the set had been marked failed: not trusted, take a new backup"
    )
    await update_set(session, row.id, error=(current.error + note)[:4000])
    run = await backup_run_id(session, row.id)
    await finish_run(
        session, run, "failed", {"targets": names, "size_bytes": total, "late": True}, note[2:]
    )
    await session.commit()
    log.warning("backup: set %s finished after it had been marked failed; kept failed", row.id)
    # failed, so never drilled or restored: its files go as any failed set's do, in the
    # destination too (this run may have copied them after the sweep deleted its own)
    store.remove(store.set_dir(context.plugin_settings("backup"), row.location))
    failed = await get_set(session, row.id)
    await destinations.discard(context, failed)
    return failed


async def _fail(
    context: Any,
    row: BackupSet,
    exc: BaseException,
    artifacts: list[BackupArtifact],
    progress: dict[str, Any] | None,
) -> bool:
    """Record the set ``failed`` and announce it, delete its files; ``False`` when the stale
    sweep had failed (and announced) it already."""
    if isinstance(exc, asyncio.CancelledError | TimeoutError | KeyboardInterrupt):
        error = (
            "interrupted: the backup's time limit (CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS) "
            "or a shutdown stopped it"
        )
    else:
        error = _error_text(exc)
    log.error("backup: set %s failed: %s", row.id, error)
    extra = {} if progress is None else {"progress": progress}
    async with context.session_factory() as session:
        run = await backup_run_id(session, row.id)
        failed_here = await update_set(
            session,
            row.id,
            only_if="running",
            status="failed",
            finished_at=utcnow(),
            error=error,
            **extra,
        )
        if failed_here:
            await finish_run(session, run, "failed", {"done": [a.target for a in artifacts]}, error)
            publish(
                session, SetFailed(set_id=row.id, trigger=row.trigger, error=error), subject=row.id
            )
        elif not await finish_running_run(
            session, run, "failed", {"done": [a.target for a in artifacts]}, error
        ):
            # the stale sweep failed (and announced) it already, and deleted its folder,
            # which is likely why this run failed now: its reason stays, this is noted
            await note_late_run(session, run, False, error)
        await session.commit()
        failed = await get_set(session, row.id)
    # a failed set is never drilled or restored: what it wrote before failing would only
    # hold the space (a full disk's) that nothing, not retention, would ever free; the
    # same goes for what an upload had copied to its destination
    store.remove(store.set_dir(context.plugin_settings("backup"), row.location))
    await destinations.discard(context, failed)
    return failed_here
