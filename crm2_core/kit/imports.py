"""CSV imports, small or large: one declaration, a per-row report, a background job when big.

A plugin declares what a row is and how a batch of rows is written::

    CLIENT_IMPORT = CsvImport(
        "deals.clients", columns=(...), required=("name",),
        parse=parse_row,            # one row's cells -> a validated value (ValueError: row error)
        apply=import_batch,         # writes a batch; one outcome per row
        check=check_batch,          # optional, read-only: the errors apply would find
        rules=RULES,
    )

and :func:`import_routes` adds ``POST <path>`` and ``GET <path>/{job_id}``. The
whole file is read and checked first (UTF-8, its header, its size): a refused
file is a 422 before any row is parsed or written. A small file is imported in
the request's transaction and answered with the report (200). A file with more
rows than the plugin's threshold (or ``?background=true``) is answered
``202 Accepted`` with ``Location`` of a status resource, and imported in
batches, each batch its own short transaction, so other writers keep going (on
SQLite too) and progress shows.

``partial=false`` (the default) is all-or-nothing. In the request that is one
savepoint. In a job it is two passes: every row is checked first (``parse``,
then ``check``, or ``apply`` rolled back when there is no ``check``), and only a
file without errors is written. Rows that became invalid between the two passes
(another client took the same e-mail meanwhile) are reported and not written.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.db import utcnow
from crm2_core.errors import NotFound, Unprocessable
from crm2_core.jobs import MAX_STORED_ERRORS, ImportJob, JobRunner
from crm2_core.kit.csv import unguard
from crm2_core.kit.visibility import RecordRules, acting_user
from crm2_core.schemas import ResponseModel, unstorable_text
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext

log = logging.getLogger(__name__)
R = TypeVar("R")
T = TypeVar("T")
OUTCOMES = ("created", "updated", "skipped")
BATCH_SIZE = 500


class CsvFileInvalid(Unprocessable):
    slug, title = "csv-invalid", "The CSV file cannot be read"


class ImportRefused(Unprocessable):
    """Rows with errors and no ``partial``: nothing was written; ``report`` says which rows."""

    slug, title = "import-refused", "Rows of the file have errors: nothing was written"


class ImportJobNotFound(NotFound):
    slug, title = "import-job-not-found", "No such import job"


@dataclass(frozen=True)
class RowError:
    """What ``apply`` returns for a row it refused (the batch goes on)."""

    reason: str


Parse = Callable[[dict[str, str]], R]
Apply = Callable[[AsyncSession, Principal, Sequence[tuple[int, R]]], Awaitable[Sequence[Any]]]
Check = Callable[[AsyncSession, Principal, Sequence[tuple[int, R]]], Awaitable[Mapping[int, str]]]


@dataclass(frozen=True)
class CsvImport(Generic[R]):
    """A plugin's CSV import.

    ``parse(cells) -> R`` is pure (``ValueError``: that row is refused);
    ``apply(session, principal, rows)`` writes a batch and returns, per row in
    order, ``"created"``, ``"updated"``, ``"skipped"`` or a :class:`RowError`;
    ``check`` (optional, read-only) returns ``{row: reason}`` for the rows apply
    would refuse. ``rules`` decides who else may read a job (its starter always may).
    """

    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    parse: Parse[R]
    apply: Apply[R]
    check: Check[R] | None = None
    rules: RecordRules | None = None
    file_error: type[Unprocessable] = CsvFileInvalid
    batch_size: int = BATCH_SIZE


# -- bodies -----------------------------------------------------------------------------


class ImportRowError(BaseModel):
    row: int = Field(description="the spreadsheet row: the header is row 1")
    reason: str


class ImportReport(BaseModel):
    """What an import did (or, for a dry run or a refused file, would have done)."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[ImportRowError] = Field(default_factory=list)
    dry_run: bool = False
    applied: bool = Field(False, description="whether the changes were written")


class ImportJobPublic(ResponseModel):
    """A background import: poll it until ``status`` is ``done`` or ``failed``."""

    id: uuid.UUID
    kind: str
    status: str = Field(description="queued, running, done or failed")
    phase: str = Field(description="queued, checking (nothing written yet), writing or done")
    dry_run: bool
    partial: bool
    total: int = Field(description="data rows in the file")
    processed: int = Field(description="rows handled so far in this phase")
    created: int
    updated: int
    skipped: int
    error_count: int = Field(description="rows refused (errors lists the first 1,000)")
    errors: list[ImportRowError]
    applied: bool = Field(description="whether the changes were written")
    detail: str | None = Field(description="why a failed job failed")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


# -- reading the file -------------------------------------------------------------------


def read_csv(
    content: bytes,
    *,
    required: Sequence[str],
    columns: Sequence[str],
    max_rows: int,
    error: type[Unprocessable] = CsvFileInvalid,
) -> list[tuple[int, dict[str, str]]]:
    """``(spreadsheet row, {column: text})`` for every non-empty data row (the header is row 1).

    Refuses, before anything else happens: a file that is not UTF-8, a header
    without the ``required`` columns, more than ``max_rows`` rows, a cell no
    database can store, malformed CSV. Unknown columns are ignored (an export
    imports as it is); cells lose the formula guard an export added.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error("the file is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise error(f"the file is not valid CSV: {exc}") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise error(
            f"the first row must name the columns, at least {', '.join(map(repr, required))}; "
            "known columns: " + ", ".join(columns)
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for number, record in enumerate(reader, start=2):
            if len(rows) >= max_rows:
                raise error(f"the file has more than {max_rows} rows; split it")
            values = {
                k: unguard((v or "").strip())
                for k, v in record.items()
                if isinstance(k, str) and isinstance(v, str)
            }
            for column, value in values.items():
                reason = unstorable_text(value)
                if reason:
                    raise error(f"row {number}, column {column}: {reason}")
            if any(values.values()):
                rows.append((number, values))
    except csv.Error as exc:
        raise error(f"the file is not valid CSV: {exc}") from exc
    return rows


def validation_reason(exc: ValidationError) -> str:
    """The first error of a row's validation, as ``field: message``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[ImportRowError] = field(default_factory=list)

    def add(self, number: int, outcome: Any) -> None:
        if isinstance(outcome, RowError):
            self.errors.append(ImportRowError(row=number, reason=outcome.reason))
        elif outcome in OUTCOMES:
            setattr(self, outcome, getattr(self, outcome) + 1)
        else:
            raise TypeError(f"an import's apply returned {outcome!r} for row {number}")

    def report(self, *, dry_run: bool, applied: bool) -> ImportReport:
        errors = sorted(self.errors, key=lambda e: e.row)
        return ImportReport(
            created=self.created,
            updated=self.updated,
            skipped=self.skipped,
            errors=errors,
            dry_run=dry_run,
            applied=applied,
        )


def parse_rows(
    spec: CsvImport[R], rows: Sequence[tuple[int, dict[str, str]]]
) -> tuple[list[tuple[int, R]], list[ImportRowError]]:
    """Every row through ``spec.parse``: the good ones, and the refused ones with why."""
    parsed: list[tuple[int, R]] = []
    errors: list[ImportRowError] = []
    for number, values in rows:
        try:
            parsed.append((number, spec.parse(values)))
        except ValidationError as exc:
            errors.append(ImportRowError(row=number, reason=validation_reason(exc)))
        except ValueError as exc:
            errors.append(ImportRowError(row=number, reason=str(exc)))
    return parsed, errors


def batches(items: Sequence[tuple[int, T]], size: int) -> Iterator[Sequence[tuple[int, T]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parsed_batches(
    spec: CsvImport[R], rows: Sequence[tuple[int, dict[str, str]]], tally: _Tally
) -> Iterator[tuple[int, list[tuple[int, R]]]]:
    """``(rows read, their good rows)`` a batch at a time; the refused ones go to ``tally``.

    Parsed per batch, never the whole file at once: a parsed row is a few objects the
    cyclic GC tracks (a raw row of strings is not), and 50,000 of them alive for the
    whole import made every full collection rescan them all. A job's two passes parse
    twice, which costs less than those collections did.
    """
    for raw in batches(rows, spec.batch_size):
        parsed, errors = parse_rows(spec, raw)
        tally.errors.extend(errors)
        yield len(raw), parsed


async def _apply(
    spec: CsvImport[R],
    session: AsyncSession,
    principal: Principal,
    batch: Sequence[tuple[int, R]],
    tally: _Tally,
) -> None:
    if not batch:  # every row of it refused by parse
        return
    outcomes = await spec.apply(session, principal, batch)
    if len(outcomes) != len(batch):
        raise TypeError(f"{spec.name}: apply returned {len(outcomes)} outcomes for {len(batch)}")
    for (number, _), outcome in zip(batch, outcomes, strict=True):
        tally.add(number, outcome)


# -- in the request ---------------------------------------------------------------------


async def import_now(
    session: AsyncSession,
    principal: Principal,
    spec: CsvImport[R],
    rows: Sequence[tuple[int, dict[str, str]]],
    *,
    dry_run: bool,
    partial: bool,
) -> ImportReport:
    """Import in the request's transaction, inside a savepoint kept only when allowed."""
    tally = _Tally()
    savepoint = await session.begin_nested()
    for _, batch in parsed_batches(spec, rows, tally):
        await _apply(spec, session, principal, batch, tally)
    if dry_run or (tally.errors and not partial):
        await savepoint.rollback()
        return tally.report(dry_run=dry_run, applied=False)
    await savepoint.commit()
    return tally.report(dry_run=dry_run, applied=True)


# -- as a background job ----------------------------------------------------------------


def start_job(
    context: AppContext,
    session: AsyncSession,
    principal: Principal,
    spec: CsvImport[R],
    rows: Sequence[tuple[int, dict[str, str]]],
    *,
    dry_run: bool,
    partial: bool,
) -> ImportJob:
    """Add the job's row to the request's transaction; the work starts once it commits."""
    job = ImportJob(
        kind=spec.name,
        owner_id=acting_user(principal),
        dry_run=dry_run,
        partial=partial,
        total=len(rows),
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
                    f"the import stopped with an internal error ({type(exc).__name__}); "
                    "the batches before it were written"
                )
                await self._save(session, status="failed", finished_at=utcnow(), detail=detail)
                await session.commit()

    async def _run(self) -> None:
        spec, principal = self.spec, self.principal
        await self._progress("checking", 0)
        if self.dry_run or not self.partial:
            checked = await self._check()
            if self.dry_run or checked.errors:
                await self._finish(checked, applied=False)
                return
        tally = _Tally()
        done = 0
        for read, batch in parsed_batches(spec, self.rows, tally):
            async with self.context.session_factory() as session:
                await _apply(spec, session, principal, batch, tally)
                done += read
                await self._save(session, status="running", phase="writing", processed=done,
                                 **self._counts(tally))  # fmt: skip
                await session.commit()
        await self._finish(tally, applied=True)

    async def _check(self) -> _Tally:
        """The first pass: what the import would do, nothing written."""
        spec, tally, done = self.spec, _Tally(), 0
        for read, batch in parsed_batches(spec, self.rows, tally):
            async with self.context.session_factory() as session:
                if not batch:  # every row of it refused by parse
                    pass
                elif spec.check is not None and not self.dry_run:
                    refused = await spec.check(session, self.principal, batch)
                    for number, reason in refused.items():
                        tally.errors.append(ImportRowError(row=number, reason=reason))
                else:
                    await _apply(spec, session, self.principal, batch, tally)
                await session.rollback()
            done += read
            await self._progress("checking", done, tally if self.dry_run else None)
        return tally

    async def _finish(self, tally: _Tally, *, applied: bool) -> None:
        async with self.context.session_factory() as session:
            await self._save(session, status="done", phase="done", applied=applied,
                             finished_at=utcnow(), **self._counts(tally))  # fmt: skip
            await session.commit()


async def get_job(
    session: AsyncSession, principal: Principal, spec: CsvImport[Any], job_id: uuid.UUID
) -> ImportJob:
    """The job, if it is ``spec``'s and the caller started it (or its rules let them see it)."""
    job = await session.get(ImportJob, job_id, populate_existing=True)
    if job is None or job.kind != spec.name:
        raise ImportJobNotFound(f"no import job {job_id}")
    sees_all = spec.rules is not None and spec.rules.visibility(principal).unrestricted
    if not (sees_all or job.owner_id == acting_user(principal)):
        raise ImportJobNotFound(f"no import job {job_id}")
    if job.is_stale():
        job.status, job.detail = (
            "failed",
            ("interrupted: the process running it stopped; batches written before stay written"),
        )
    return job
