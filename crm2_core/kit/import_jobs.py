"""A large CSV import as a background job: the status row, progress, two passes, one parse.

``partial=false`` (the default) is all-or-nothing, so a job makes two passes: every
row is checked first (``parse``, then ``check``, or ``apply`` rolled back when there
is no ``check``), and only a file without errors is written; a file with errors ends
the job ``refused`` with the problem a refused upload answers with. Each row is
parsed once: the check pass keeps the batches it parsed and the write pass takes
them, letting each go once written. Rows that became invalid between the two passes
(another client took the same e-mail meanwhile) are reported and not written.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.db import utcnow
from crm2_core.db.plans import analyze_grown_tables, plan_for_growing_tables
from crm2_core.jobs import MAX_STORED_ERRORS, ImportJob, JobRunner
from crm2_core.kit.gc_pause import gc_paused
from crm2_core.kit.imports import (
    REFUSED,
    CsvImport,
    ImportJobNotFound,
    ImportRowError,
    R,
    _apply,
    _Tally,
    parsed_batches,
)
from crm2_core.kit.visibility import acting_user
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext

log = logging.getLogger(__name__)
# how often a batch is written before a deadlock or serialization failure stops the job
BATCH_ATTEMPTS = 3
# PostgreSQL's "try again" errors: a serialization failure, a deadlock
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def _retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in (
        _RETRYABLE_SQLSTATES
    )


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)


# ``(rows read, their good rows)``: one batch as parsed
Parsed = tuple[int, list[tuple[int, R]]]


def _taking(parsed: list[Parsed[R]]) -> Iterator[Parsed[R]]:
    """The batches in order, each let go of once taken: the parsed file shrinks as it is
    written instead of staying whole until the end."""
    parsed.reverse()
    while parsed:
        yield parsed.pop()


def start_job(
    context: AppContext,
    session: AsyncSession,
    principal: Principal,
    spec: CsvImport[R],
    rows: Sequence[tuple[int, dict[str, str]]],
    *,
    dry_run: bool,
    partial: bool,
    ignored_columns: Sequence[str] = (),
) -> ImportJob:
    """Add the job's row to the request's transaction; the work starts once it commits
    (``ignored_columns``: the header's unknown columns, which its report names)."""
    job = ImportJob(
        kind=spec.name,
        owner_id=acting_user(principal),
        dry_run=dry_run,
        partial=partial,
        total=len(rows),
        ignored_columns=list(ignored_columns),
    )
    session.add(job)
    runner = JobRunner.of(context)
    work = _JobWork(context, spec, job.id, principal, rows, dry_run=dry_run, partial=partial)
    runner.after_commit(session, work.run, name=f"import {spec.name} {job.id}")
    return job


class _JobWork(Generic[R]):
    def __init__(
        self,
        context: AppContext,
        spec: CsvImport[R],
        job_id: uuid.UUID,
        principal: Principal,
        rows: Sequence[tuple[int, dict[str, str]]],
        *,
        dry_run: bool,
        partial: bool,
    ) -> None:
        self.context, self.spec, self.job_id, self.principal = context, spec, job_id, principal
        self.rows, self.dry_run, self.partial = rows, dry_run, partial

    async def _save(self, session: AsyncSession, **values: Any) -> None:
        stmt = update(ImportJob).where(col(ImportJob.id) == self.job_id)
        await session.execute(stmt.values(updated_at=utcnow(), **values))

    async def _progress(self, phase: str, processed: int, tally: _Tally | None = None) -> None:
        async with self.context.session_factory() as session:
            await self._save(session, status="running", phase=phase, processed=processed,
                             **self._counts(tally))  # fmt: skip
            await session.commit()

    @staticmethod
    def _counts(tally: _Tally | None) -> dict[str, Any]:
        if tally is None:
            return {}
        errors = sorted(tally.errors, key=lambda e: e.row)
        return {
            "created": tally.created,
            "updated": tally.updated,
            "skipped": tally.skipped,
            "error_count": len(errors),
            "errors": [e.model_dump() for e in errors[:MAX_STORED_ERRORS]],
        }

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as exc:
            log.exception("import job %s (%s) failed", self.job_id, self.spec.name)
            async with self.context.session_factory() as session:
                detail = (
                    "concurrent changes to the same records aborted a batch "
                    f"{BATCH_ATTEMPTS} times ({_first_line(exc)}); the batches before it "
                    "were written: import the rest again"
                    if isinstance(exc, DBAPIError) and _retryable(exc)
                    else f"the import stopped with an internal error ({type(exc).__name__}); "
                    "the batches before it were written"
                )
                await self._save(session, status="failed", finished_at=utcnow(), detail=detail)
                await session.commit()

    async def _run(self) -> None:
        await self._progress("checking", 0)
        tally = _Tally()
        batches: Iterator[Parsed[R]]
        if self.dry_run or not self.partial:
            checked, parsed = await self._check()
            if self.dry_run:
                await self._finish(checked, applied=False)
                return
            if checked.errors:
                await self._finish(checked, applied=False, status=REFUSED)
                return
            batches, self.rows = _taking(parsed), ()
        else:
            batches = parsed_batches(self.spec, self.rows, tally)
        done = 0
        # statistics for what the batches wrote: the next batches' plans (and the
        # handlers' claims on the event log) need them long before autovacuum runs.
        # One ANALYZE run at a time, beside the next batch rather than before it (the
        # runs took an eighth of a 50,000-row job's time when it waited for them).
        analyzing: asyncio.Task[None] | None = None
        try:
            for read, batch in batches:
                done += read
                await self._write(batch, done, tally)
                if analyzing is None or analyzing.done():
                    analyzing = asyncio.create_task(self._keep_statistics())
            if analyzing is not None:
                await analyzing  # the job ends with its tables' statistics current
        except BaseException:
            if analyzing is not None:
                analyzing.cancel()
            raise
        await self._finish(tally, applied=True)

    async def _keep_statistics(self) -> None:
        try:
            await analyze_grown_tables(self.context.session_factory)
        except Exception as exc:  # statistics are an optimisation: never stop the import
            log.warning("import job %s could not refresh table statistics (%s)", self.job_id, exc)

    async def _write(self, batch: list[tuple[int, R]], done: int, tally: _Tally) -> None:
        """One batch written, with the job's progress, in one transaction; again when a
        concurrent writer made PostgreSQL abort it (a deadlock, a serialization
        failure): it was rolled back whole, so it is written afresh."""
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            kept = replace(tally, errors=list(tally.errors))
            try:
                await self._write_once(batch, done, tally)
                return
            except DBAPIError as exc:
                if not _retryable(exc) or attempt == BATCH_ATTEMPTS:
                    raise
                log.warning("import job %s: batch aborted by a concurrent change (%s), "
                            "writing it again", self.job_id, _first_line(exc))  # fmt: skip
                tally.created, tally.updated, tally.skipped = (
                    kept.created, kept.updated, kept.skipped
                )  # fmt: skip
                tally.errors[:] = kept.errors

    async def _write_once(self, batch: list[tuple[int, R]], done: int, tally: _Tally) -> None:
        with gc_paused():
            async with self.context.session_factory() as session:
                await plan_for_growing_tables(session)
                await _apply(self.spec, session, self.principal, batch, tally, self.context)
                await self._save(session, status="running", phase="writing", processed=done,
                                 **self._counts(tally))  # fmt: skip
                await session.commit()

    async def _check(self) -> tuple[_Tally, list[Parsed[R]]]:
        """The first pass: what the import would do, nothing written; and the parsed
        batches, for the write pass (none for a dry run)."""
        tally, done = _Tally(), 0
        parsed: list[Parsed[R]] = []
        for read, batch in parsed_batches(self.spec, self.rows, tally):
            if not self.dry_run and not tally.errors:  # a file with errors is not written
                parsed.append((read, batch))
            await self._check_batch(batch, tally)
            done += read
            await self._progress("checking", done, tally if self.dry_run else None)
        return tally, parsed

    async def _check_batch(self, batch: list[tuple[int, R]], tally: _Tally) -> None:
        """What writing ``batch`` would refuse (``check``; else ``apply``, rolled back)."""
        spec = self.spec
        if not batch:  # every row of it refused by parse
            return
        with gc_paused():
            async with self.context.session_factory() as session:
                await plan_for_growing_tables(session)
                if spec.check is not None and not self.dry_run:
                    refused = await spec.check_batch(session, self.principal, batch, self.context)
                    for number, reason in refused.items():
                        tally.errors.append(ImportRowError(row=number, reason=reason))
                else:
                    await _apply(spec, session, self.principal, batch, tally, self.context)
                await session.rollback()

    async def _finish(self, tally: _Tally, *, applied: bool, status: str = "done") -> None:
        async with self.context.session_factory() as session:
            await self._save(session, status=status, phase="done", applied=applied,
                             finished_at=utcnow(), **self._counts(tally))  # fmt: skip
            await session.commit()


async def get_job(
    session: AsyncSession, principal: Principal, spec: CsvImport[Any], job_id: uuid.UUID
) -> ImportJob:
    """The job, if it is ``spec``'s and the caller started it (or its rules let them see it)."""
    job = await session.get(ImportJob, job_id, populate_existing=True)
    if job is None or job.kind != spec.name:
        raise ImportJobNotFound(f"no import job {job_id}")
    sees_all = spec.rules is not None and spec.rules.in_session(session, principal).unrestricted
    if not (sees_all or job.owner_id == acting_user(principal)):
        raise ImportJobNotFound(f"no import job {job_id}")
    if job.is_stale():
        job.status, job.detail = (
            "failed",
            ("interrupted: the process running it stopped; batches written before stay written"),
        )
    return job
