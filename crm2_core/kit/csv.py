"""CSV for exports and imports: formula-safe cells, a versioned column set, streamed pages.

A cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR
at the start) gets a leading apostrophe, unless it is a plain number (``-3``,
``-0.05``): anything else a spreadsheet would calculate (``-1-1``, a phone
``+39 06 1``); ``unguard`` undoes that so an export imports again. A value that
starts with apostrophes before such a start (``'=x``) gets one more, so it
imports as it was rather than losing its own. Each export names
its column set and that set's version (``X-Columns-Version``): a client that
reads columns by position sees the version change when the set does.

A long export checks, before each page, that its caller still holds what it
started with (``kit/exports.py``, ``while_allowed``): a right removed mid-way
stops it there. The download then ends without HTTP's closing chunk, so a client sees
a cut-off transfer, never a shorter file that looks complete.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Send

from crm2_core.db.pagination import PageParams

R = TypeVar("R")
LIST_SEPARATOR = ";"
EXPORT_PAGE_SIZE = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# what safe_cell may change: a formula start, or an apostrophe (a guard's look-alike)
_GUARD_FIRST = frozenset((*_FORMULA_START, "'"))
# ASCII digits only: \d also matches other scripts' digits, which a spreadsheet reads as text
_PLAIN_NUMBER = re.compile(r"-[0-9]+(\.[0-9]+)?")
log = logging.getLogger(__name__)


class ExportStopped(Exception):
    """The caller lost a right the export was started with: the rest is not sent."""


@dataclass(frozen=True)
class CsvColumns:
    """An export's header row; bump ``version`` whenever the set or its order changes."""

    names: tuple[str, ...]
    version: int = 1


def _needs_guard(value: str) -> bool:
    # after any apostrophes already there: unguard takes one off a cell that starts with
    # one, so a value that is itself "'=x" must leave as "''=x" to come back as it was
    bare = value.lstrip("'")
    return bare.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(bare)


def safe_cell(value: str) -> str:
    return "'" + value if _needs_guard(value) else value


def unguard(value: str) -> str:
    """Undo :func:`safe_cell`, so an export can be imported again."""
    if value.startswith("'") and _needs_guard(value[1:]):
        return value[1:]
    return value


def cell(value: Any) -> str:
    """One value as CSV text: lists joined by ``;``, dates ISO, money as its decimal string."""
    # The common cells first, by exact type (an export renders millions of them): a
    # string that cannot start a formula is itself; an int's text is digits with at most
    # a leading "-" (a plain number, never guarded); a UUID's starts with a hex digit. A str
    # or int subclass (an enum) takes the general path, where str() decides its text.
    kind = type(value)
    if kind is str:
        return value if not value or value[0] not in _GUARD_FIRST else safe_cell(value)
    if value is None:
        return ""
    if kind is int or kind is uuid.UUID:
        return str(value)
    if kind is datetime or kind is date:
        moment: date = value
        return moment.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return safe_cell(LIST_SEPARATOR.join(str(v) for v in value))
    return safe_cell(str(value))


def render(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text (``\\r\\n`` line ends, as RFC 4180 says)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]


FetchPage = Callable[[AsyncSession, PageParams], Awaitable[tuple[list[R], str | None]]]
RenderRows = Callable[[AsyncSession, list[R]], Awaitable[Iterable[Sequence[Any]]]]


async def export_pages(
    session_factory: async_sessionmaker[AsyncSession],
    columns: CsvColumns,
    fetch: FetchPage[R],
    rows: RenderRows[R],
    page_size: int = EXPORT_PAGE_SIZE,
) -> AsyncIterator[str]:
    """The header, then one CSV chunk per keyset page, each page read in a short session."""
    yield render([columns.names])
    cursor: str | None = None
    while True:
        async with session_factory() as session:
            items, cursor = await fetch(session, PageParams(limit=page_size, cursor=cursor))
            chunk = render(await rows(session, items))
        yield chunk
        if cursor is None:
            return


def csv_response(chunks: AsyncIterator[str], name: str, columns: CsvColumns) -> StreamingResponse:
    """A streamed ``text/csv`` download named ``<name>-<UTC time>.csv``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return CsvStreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"',
            "X-Columns-Version": str(columns.version),
        },
    )


class CsvStreamingResponse(StreamingResponse):
    """A streamed CSV that an :class:`ExportStopped` cuts off: no closing chunk is sent,
    and the server closes the connection, so the client sees the transfer fail."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        except ExportStopped as exc:
            log.warning("export stopped: %s", exc)
