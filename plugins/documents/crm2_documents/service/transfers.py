"""The transfer queue: moving a version's file from one backend to another, in the background.

A version waiting to move has ``state = transferring``, a ``target_backend`` and a
``next_attempt_at``. Each run of the ``transfers`` job claims a due version with a
conditional UPDATE (one process wins each) just before it copies it, as a lease: its
``next_attempt_at`` moves ``LEASE_SECONDS`` ahead and is pushed on while the copy runs,
so no other run takes it up however long the copy takes (a run that dies lets its lease
run out, and the version is tried again). It copies the bytes (streamed, checked
against the version's size and SHA-256), then records the new place and removes
the old copy. A failure waits with backoff;
after ``CRM2_DOCUMENTS_TRANSFER_MAX_ATTEMPTS`` the version is ``failed`` (still
readable where it was) and ``documents.document.transfer_failed`` is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import publish, utcnow
from crm2_documents.errors import FileNotReady, TransferFailedState, UnknownBackend
from crm2_documents.events import TransferDone, TransferFailed
from crm2_documents.models import Document, Version
from crm2_documents.service.documents import identity
from crm2_documents.service.versions import get_version
from crm2_documents.storage.registry import storage_of
from crm2_hookspecs import Principal

log = logging.getLogger(__name__)
BACKOFF_SECONDS = (5, 30, 120, 600, 1800)
# How long a claimed version is kept from other runs, renewed while its copy runs.
LEASE_SECONDS = 60.0


async def request(
    session: AsyncSession,
    context: Any,
    principal: Principal,
    document_id: uuid.UUID,
    number: int,
    backend: str,
) -> tuple[Version, bool]:
    """Queue version ``number`` for a move to ``backend``; whether a move was queued
    (``False``: the file is on ``backend`` already and nothing changes). A ``failed``
    version asked onto the backend it is still on is a 409: a 200 there would answer
    "done" and keep ``failed``; asking for its target again retries the move."""
    storage = storage_of(context)
    if backend not in storage.backends:
        raise UnknownBackend(f"no storage backend {backend!r}; have {sorted(storage.backends)}")
    _, version = await get_version(session, principal, document_id, number)
    if version.state == "transferring":
        raise FileNotReady(f"version {number} is already moving to {version.target_backend}")
    if version.backend == backend and version.state == "failed":
        raise TransferFailedState(
            f"version {number} is failed: its move to {version.target_backend!r} failed and "
            f"its file is still on {backend!r}; ask for {version.target_backend!r} to retry "
            "the move"
        )
    if version.backend == backend:
        return version, False
    # conditional on the version as read: of two requests at once, one queues its move
    queued = await session.execute(
        update(Version)
        .where(
            col(Version.id) == version.id,
            col(Version.state) == version.state,
            col(Version.backend) == version.backend,
            col(Version.target_backend).is_not_distinct_from(version.target_backend),
        )
        .values(
            state="transferring",
            target_backend=backend,
            attempts=0,
            next_attempt_at=utcnow(),
            last_error=None,
        )
    )
    await session.refresh(version)
    if not queued.rowcount:  # type: ignore[attr-defined]
        raise FileNotReady(
            f"version {number} changed while this request ran: it is {version.state}"
            + (f", moving to {version.target_backend!r}" if version.state == "transferring" else "")
        )
    return version, True


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])


async def _claim(context: Any, now: datetime, candidates: int) -> Version | None:
    """A due version, claimed by bumping ``attempts`` where it was unchanged; its lease
    (``next_attempt_at``) runs ``LEASE_SECONDS`` from ``now``. One at a time, just before
    its copy: a batch claimed at once would see its later leases run out while the
    earlier copies ran."""
    days = context.plugin_settings("documents").retention_days
    async with context.session_factory() as session:
        stmt = (
            select(Version)
            .join(Document, col(Document.id) == col(Version.document_id))
            .where(col(Version.state) == "transferring", col(Version.next_attempt_at) <= now)
            .where(  # a document past retention is the purge's: no copy made of it
                or_(
                    col(Document.deleted_at).is_(None),
                    col(Document.deleted_at) >= now - timedelta(days=days),
                )
            )
            .order_by(col(Version.next_attempt_at))
            .limit(candidates)
        )
        due: list[Version] = list((await session.execute(stmt)).scalars())
        for version in due:
            attempts = version.attempts + 1
            won = await session.execute(
                update(Version)
                .where(col(Version.id) == version.id, col(Version.attempts) == version.attempts)
                .values(attempts=attempts, next_attempt_at=now + _lease())
            )
            if won.rowcount:
                session.expunge(version)
                version.attempts = attempts
                await session.commit()
                return version
        await session.commit()
    return None


def _lease() -> timedelta:
    return timedelta(seconds=LEASE_SECONDS)


@contextlib.asynccontextmanager
async def _leased(
    context: Any, version: Version, clock: Callable[[], datetime]
) -> AsyncIterator[None]:
    """Push the version's lease on while its copy runs (a third of the lease at a time),
    for as long as this run's claim is the one that holds it."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                async with context.session_factory() as session:
                    await session.execute(
                        update(Version)
                        .where(
                            col(Version.id) == version.id,
                            col(Version.attempts) == version.attempts,
                            col(Version.state) == "transferring",
                        )
                        .values(next_attempt_at=clock() + _lease())
                    )
                    await session.commit()
            except Exception as exc:  # the database away for a moment: try again next time
                log.warning("documents: could not renew the lease of %s: %s", version.id, exc)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class CopyMismatch(Exception):
    """The bytes read from the source are not the version's (a short read, a damaged file)."""


async def _move(context: Any, version: Version) -> None:
    """Copy the file to the target, checked against the version's size and SHA-256 as it
    streams: a copy that differs raises inside ``put``, so the target stores nothing and
    the original stays where it is."""
    storage = storage_of(context)
    source = storage.get(version.backend)
    target = storage.get(version.target_backend or "")

    async def checked() -> AsyncIterator[bytes]:
        digest, size = hashlib.sha256(), 0
        async for chunk in source.open(version.storage_key):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        if size != version.size or digest.hexdigest() != version.sha256:
            raise CopyMismatch(
                f"read {size} bytes (SHA-256 {digest.hexdigest()}) from {version.backend!r}; "
                f"the version has {version.size} (SHA-256 {version.sha256})"
            )

    await target.put(version.storage_key, checked())


async def _record(
    context: Any, version: Version, error: str | None, max_attempts: int, now: datetime
) -> str:
    """Write the outcome of one attempt; returns ``stored`` | ``retry`` | ``failed``, or
    ``gone`` when the version no longer waits on this run's claim (purged, or claimed
    again after this run's lease ran out) or its document is the purge's to remove."""
    async with context.session_factory() as session:
        document = await session.get(Document, version.document_id)
        if _being_purged(context, document, now):
            # settled, not left transferring: the move is over, whatever came of the copy
            # (which _drop_if_purged removes); the purge takes the version with its document
            await session.execute(
                update(Version)
                .where(
                    col(Version.id) == version.id,
                    col(Version.state) == "transferring",
                    col(Version.attempts) == version.attempts,
                )
                .values(
                    state="failed",
                    next_attempt_at=None,
                    last_error=f"the document is past retention: {error or 'copy dropped'}"[:500],
                )
            )
            await session.commit()
            return "gone"
        if error is None:
            outcome = "stored"
            values: dict[str, Any] = {
                "state": "stored",
                "backend": version.target_backend,
                "target_backend": None,
                "next_attempt_at": None,
                "last_error": None,
            }
        elif version.attempts >= max_attempts:
            outcome = "failed"
            values = {"state": "failed", "next_attempt_at": None, "last_error": error[:500]}
        else:
            outcome = "retry"
            retry_at = now + _backoff(version.attempts)
            values = {"last_error": error[:500], "next_attempt_at": retry_at}
        result = await session.execute(
            update(Version)
            .where(
                col(Version.id) == version.id,
                col(Version.state) == "transferring",
                col(Version.attempts) == version.attempts,
            )
            .values(**values)
        )
        if not result.rowcount:
            await session.rollback()
            return "gone"
        if document is not None and outcome == "stored":
            event: Any = TransferDone(
                number=version.number, backend=version.target_backend or "", **identity(document)
            )
            publish(session, event, subject=document.id)
        elif document is not None and outcome == "failed":
            event = TransferFailed(
                number=version.number,
                target_backend=version.target_backend or "",
                error=error or "",
                **identity(document),
            )
            publish(session, event, subject=document.id)
        await session.commit()
    return outcome


def _being_purged(context: Any, document: Document | None, now: datetime) -> bool:
    """Deleted past retention: no restore brings it back, and the purge (files first, then
    rows) may have removed its files already, the target's copy too."""
    if document is None or document.deleted_at is None:
        return False
    days = context.plugin_settings("documents").retention_days
    return document.deleted_at < now - timedelta(days=days)


async def _drop_if_purged(context: Any, version: Version, now: datetime) -> None:
    """The copy landed after the purge removed the version or while it removes its files
    (it deletes files, then rows): remove it, or the purged file lives on. A version
    still there of a live document was recorded by another run: its copy is in use."""
    async with context.session_factory() as session:
        found = await session.get(Version, version.id)
        document = await session.get(Document, version.document_id)
        if found is not None and not _being_purged(context, document, now):
            return
    try:
        await storage_of(context).get(version.target_backend or "").delete(version.storage_key)
    except Exception:
        log.warning(
            "documents: could not remove the purged %s from %s", version.id, version.target_backend
        )


async def run_transfers(context: Any, now: datetime | None = None) -> dict[str, int]:
    """One pass of the queue; safe to run in several processes at once."""
    settings = context.plugin_settings("documents")
    counts = {"stored": 0, "retry": 0, "failed": 0, "gone": 0}
    offset = (now or utcnow()) - utcnow()  # a test's ``now``: the run's clock starts there

    def clock() -> datetime:
        return utcnow() + offset

    for _ in range(settings.transfer_batch):
        version = await _claim(context, clock(), settings.transfer_batch)
        if version is None:
            break
        error: str | None = None
        try:
            async with _leased(context, version, clock):
                await _move(context, version)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("documents transfer of version %s failed: %s", version.id, error)
        outcome = await _record(context, version, error, settings.transfer_max_attempts, clock())
        counts[outcome] += 1
        if outcome == "gone" and error is None:
            await _drop_if_purged(context, version, clock())
        if outcome == "stored":
            try:  # the old copy: a leftover is harmless, the row no longer points at it
                await storage_of(context).get(version.backend).delete(version.storage_key)
            except Exception:
                log.warning("documents: could not remove %s from %s", version.id, version.backend)
    return counts
