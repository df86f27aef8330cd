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
savepoint, and a file with row errors is answered ``422 import-refused`` with the
report. A job (``import_jobs``) checks every row first and writes only a file
without errors; one with errors ends ``refused``, with that same problem on its
status resource.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.db.plans import plan_for_growing_tables
from crm2_core.errors import NotFound, Unprocessable
from crm2_core.jobs import ImportJob
from crm2_core.kit.csv import unguard
from crm2_core.kit.gc_pause import gc_paused
from crm2_core.kit.visibility import RecordRules
from crm2_core.schemas import ResponseModel, unstorable_cell
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext

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


class MisalignedRow(dict[str, str]):
    """What :func:`read_csv` gives for a data row with more non-empty cells than the header
    has columns (most often a comma in an unquoted cell, ``Via Roma 1, Milano``): no
    cells, for its cells are shifted and the last would be lost unseen, and ``reason``,
    which :func:`parse_rows` reports as that row's error."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


@dataclass(frozen=True)
class RowError:
    """What ``apply`` returns for a row it refused (the batch goes on)."""

    reason: str


Parse = Callable[[dict[str, str]], R]
Apply = Callable[[AsyncSession, Principal, Sequence[tuple[int, R]]], Awaitable[Sequence[Any]]]
Check = Callable[[AsyncSession, Principal, Sequence[tuple[int, R]]], Awaitable[Mapping[int, str]]]
# ``needs_context``: the same, with the running application last (hooks, settings)
ApplyIn = Callable[
    [AsyncSession, Principal, Sequence[tuple[int, R]], "AppContext"], Awaitable[Sequence[Any]]
]
CheckIn = Callable[
    [AsyncSession, Principal, Sequence[tuple[int, R]], "AppContext"], Awaitable[Mapping[int, str]]
]


@dataclass(frozen=True)
class CsvImport(Generic[R]):
    """A plugin's CSV import.

    ``parse(cells) -> R`` is pure (``ValueError``: that row is refused);
    ``apply(session, principal, rows)`` writes a batch and returns, per row in
    order, ``"created"``, ``"updated"``, ``"skipped"`` or a :class:`RowError`;
    ``check`` (optional, read-only) returns ``{row: reason}`` for the rows apply
    would refuse. ``rules`` decides who else may read a job (its starter always may).

    ``needs_context``: ``apply`` and ``check`` take the running application as a
    fourth argument (``apply(session, principal, rows, context)``), for a batch that
    asks other plugins' hooks or reads settings, as the same change made through the
    plugin's REST routes does.
    """

    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    parse: Parse[R]
    apply: Apply[R] | ApplyIn[R]
    check: Check[R] | CheckIn[R] | None = None
    rules: RecordRules | None = None
    file_error: type[Unprocessable] = CsvFileInvalid
    batch_size: int = BATCH_SIZE
    needs_context: bool = False

    async def apply_batch(
        self,
        session: AsyncSession,
        principal: Principal,
        rows: Sequence[tuple[int, R]],
        context: AppContext | None,
    ) -> Sequence[Any]:
        """``apply``, given the application when it takes it."""
        if not self.needs_context:
            return await cast(Apply[R], self.apply)(session, principal, rows)
        return await cast(ApplyIn[R], self.apply)(session, principal, rows, self._in(context))

    async def check_batch(
        self,
        session: AsyncSession,
        principal: Principal,
        rows: Sequence[tuple[int, R]],
        context: AppContext | None,
    ) -> Mapping[int, str]:
        """``check`` (which must be set), given the application when it takes it."""
        assert self.check is not None
        if not self.needs_context:
            return await cast(Check[R], self.check)(session, principal, rows)
        return await cast(CheckIn[R], self.check)(session, principal, rows, self._in(context))

    def _in(self, context: AppContext | None) -> AppContext:
        if context is None:
            raise TypeError(f"{self.name}: this import needs the application (context=)")
        return context


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
    ignored_columns: list[str] = Field(
        default_factory=list,
        description="columns of the file's header the import does not know: their cells "
        "were not read (a misspelt column name shows here)",
    )
    dry_run: bool = False
    applied: bool = Field(False, description="whether the changes were written")


class ImportRefusedProblem(BaseModel):
    """The body of the ``422 import-refused`` answer: kept by a job that refused its file."""

    type: str = Field(description="urn:crm2:problem:import-refused")
    title: str
    status: int = Field(description="422")
    detail: str
    report: ImportReport = Field(
        description="what the file would have done; a job lists its first 1,000 errors"
    )


class ImportJobPublic(ResponseModel):
    """A background import: poll it until ``status`` is ``done``, ``refused`` or ``failed``."""

    id: uuid.UUID
    kind: str
    status: str = Field(
        description="queued, running, done, refused (rows have errors and partial is off: "
        "nothing was written, see problem) or failed"
    )
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
    ignored_columns: list[str] = Field(
        default_factory=list,
        description="columns of the file's header the import does not know (as in ImportReport)",
    )
    applied: bool = Field(description="whether the changes were written")
    detail: str | None = Field(description="why a failed job failed")
    problem: ImportRefusedProblem | None = Field(
        None, description="a refused job: the problem a refused upload answers with (422)"
    )
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobPublic:
        public = cls.model_validate(job)
        if job.status == REFUSED:
            public.problem = refused_problem(_report_of(job), job.error_count)
        return public


REFUSED = "refused"


def refusal(report: ImportReport, error_count: int | None = None) -> ImportRefused:
    """The ``422 import-refused`` error for a file whose rows have errors."""
    count = len(report.errors) if error_count is None else error_count
    return ImportRefused(
        f"{count} row(s) have errors (see report.errors); fix them, "
        "or send partial=true to write the good rows",
        report=report.model_dump(mode="json"),
    )


def refused_problem(report: ImportReport, error_count: int | None = None) -> ImportRefusedProblem:
    """What a refused job shows: the body ``refusal`` is answered with, but ``instance``."""
    error = refusal(report, error_count)
    return ImportRefusedProblem(
        type=error.type, title=error.title, status=error.status, detail=error.detail, report=report
    )


def _report_of(job: ImportJob) -> ImportReport:
    return ImportReport(
        created=job.created,
        updated=job.updated,
        skipped=job.skipped,
        errors=[ImportRowError.model_validate(e) for e in job.errors],
        ignored_columns=list(job.ignored_columns),
        dry_run=job.dry_run,
        applied=job.applied,
    )


# -- reading the file -------------------------------------------------------------------


def read_csv(
    content: bytes,
    *,
    required: Sequence[str],
    columns: Sequence[str],
    max_rows: int,
    error: type[Unprocessable] = CsvFileInvalid,
    ignored: list[str] | None = None,
) -> list[tuple[int, dict[str, str]]]:
    """``(spreadsheet row, {column: text})`` for every non-empty data row (the header is row 1).

    Refuses, before anything else happens: a file that is not UTF-8, a header
    without the ``required`` columns, a header cell with no name, a column named
    twice, more than ``max_rows`` rows, a cell no database can store, malformed CSV
    (a quote never closed). Unknown columns are ignored (an export imports as it
    is) and added to ``ignored``, for the report; cells lose the formula guard an
    export added.

    A row with more cells than the header, past its columns not all blank, comes as
    a :class:`MisalignedRow` (a row error: its cells are shifted, a comma in an
    unquoted cell). A row with fewer cells is read as it is, its missing columns absent:
    spreadsheets leave trailing empty cells out.

    Every message counts rows as a spreadsheet shows them (the header is row 1, a
    blank line is a row); a quoted cell may hold line breaks, so where the file's
    own line differs a syntax error names that line too.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error("the file is not UTF-8 text") from exc
    # csv.reader, not DictReader: DictReader skips blank lines, and the row numbers a
    # spreadsheet shows count them. strict: a quote never closed is an error, not a cell
    # that swallows the rest of the file
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    number, line = 1, 1  # the row being read, and the file's line it starts on
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        _check_header(header, required, columns, error)
        if ignored is not None:
            ignored.extend(h for h in header if h not in columns)
        rows: list[tuple[int, dict[str, str]]] = []
        number, line = 2, reader.line_num + 1
        for cells in reader:
            if len(rows) >= max_rows:
                raise error(f"the file has more than {max_rows} rows; split it")
            # missing cells are absent; blank ones past the header's are a spreadsheet's
            # padding, but a filled one means the row's cells are shifted
            values = {
                name: unguard(cell.strip()) for name, cell in zip(header, cells, strict=False)
            }
            bad = unstorable_cell(values)
            if bad is not None:
                raise error(f"row {number}, column {bad[0]}: {bad[1]}")
            if any(c.strip() for c in cells[len(header) :]):
                rows.append((number, _misaligned(len(cells), len(header))))
            elif any(values.values()):
                rows.append((number, values))
            number, line = number + 1, reader.line_num + 1
    except csv.Error as exc:
        where = f"row {number}" if number == line else f"row {number} (line {line} of the file)"
        if "end of data" in str(exc):
            raise error(
                f"the file is not valid CSV: the quote opened in {where} is never closed"
            ) from exc
        raise error(f"the file is not valid CSV: {where}: {exc}") from exc
    return rows


def _misaligned(cells: int, columns: int) -> MisalignedRow:
    return MisalignedRow(
        f"the row has {cells} cells but the header {columns} columns: is a cell with a "
        'comma not quoted? (write "Via Roma 1, Milano" with its quotes)'
    )


def _check_header(
    header: Sequence[str],
    required: Sequence[str],
    columns: Sequence[str],
    error: type[Unprocessable],
) -> None:
    """The first row names every column once, and at least the ``required`` ones."""
    # a column with no name would be dropped unseen, with every cell under it
    unnamed = [str(i) for i, h in enumerate(header, start=1) if not h]
    if unnamed and any(header):
        raise error(
            "the first row must name every column; column(s) "
            + ", ".join(unnamed)
            + " have no name (remove them, or name them)"
        )
    repeated = sorted({h for h in header if h and header.count(h) > 1}, key=header.index)
    if repeated:
        raise error(
            "the first row names column(s) more than once: " + ", ".join(map(repr, repeated))
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise error(
            f"the first row must name the columns, at least "
            f"{', '.join(map(repr, required))}; known columns: " + ", ".join(columns)
        )


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
        if isinstance(values, MisalignedRow):
            errors.append(ImportRowError(row=number, reason=values.reason))
            continue
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

    Parsed per batch, never the whole file first. A job's check pass keeps what it
    parsed for its write pass, which lets each batch go once written: parsing twice
    cost more CPU (bench 11: ~17% of the job's) than the collections that rescan the
    kept rows, and a file with errors is not kept at all.
    """
    for raw in batches(rows, spec.batch_size):
        # a batch's models and lists, made at once: collections scanning the whole file
        # (a job keeps its parsed batches) cost up to a tenth of a second each
        with gc_paused():
            parsed, errors = parse_rows(spec, raw)
        tally.errors.extend(errors)
        yield len(raw), parsed


async def _apply(
    spec: CsvImport[R],
    session: AsyncSession,
    principal: Principal,
    batch: Sequence[tuple[int, R]],
    tally: _Tally,
    context: AppContext | None = None,
) -> None:
    if not batch:  # every row of it refused by parse
        return
    outcomes = await spec.apply_batch(session, principal, batch, context)
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
    context: AppContext | None = None,
) -> ImportReport:
    """Import in the request's transaction, inside a savepoint kept only when allowed
    (``context``: the running application, which a ``needs_context`` import needs)."""
    tally = _Tally()
    await plan_for_growing_tables(session)  # for the rest of the request's transaction
    savepoint = await session.begin_nested()
    for _, batch in parsed_batches(spec, rows, tally):
        with gc_paused():
            await _apply(spec, session, principal, batch, tally, context)
    if dry_run or (tally.errors and not partial):
        await savepoint.rollback()
        return tally.report(dry_run=dry_run, applied=False)
    await savepoint.commit()
    return tally.report(dry_run=dry_run, applied=True)
