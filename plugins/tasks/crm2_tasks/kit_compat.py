"""The generic plumbing tasks needs, in one small module, until the core's resource kit lands.

Every name here matches the kit's (``crm2_core.api``: ``present``, ``created``,
``CsvColumns``, ``export_pages``, ``csv_response``, ``where_all``, ``eq``,
``contains_text``, ``json_list_contains``, ``resolve_entity``,
``is_active_user``, ``Sorts``), so that switching to the kit is replacing this
module's body with re-exports. Nothing tasks-specific lives here.
"""

from __future__ import annotations

import csv
import inspect
import io
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from fastapi import Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, cast, column, exists, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.auth.models import User
from crm2_core.http.etag import etag_for
from crm2_core.http.pagination import OrderKey, PageParams, sort_order
from crm2_hookspecs import Principal

R = TypeVar("R")
S = TypeVar("S", bound=Select[Any])


# -- principals ------------------------------------------------------------------------


def acting_user(principal: Principal) -> uuid.UUID:
    """The user a principal acts for: the caller, or the user who created the API key."""
    creator = principal.attributes.get("created_by") if principal.kind == "api_key" else None
    return creator if isinstance(creator, uuid.UUID) else principal.id


async def is_active_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    stmt = select(exists().where(User.id == user_id, User.is_active.is_(True)))
    return bool((await session.execute(stmt)).scalar())


# -- responses -------------------------------------------------------------------------


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


P = TypeVar("P", bound=Versioned)


def present(response: Response, public: P) -> P:
    """``public`` with its ``ETag`` header set (what a later PATCH sends as If-Match)."""
    response.headers["ETag"] = etag_for(public.version)
    return public


def created(response: Response, location: str, public: P) -> P:
    response.headers["Location"] = location
    return present(response, public)


# -- sorting and filters ---------------------------------------------------------------


class Sorts:
    """Sort orders declared once; ``dependency`` reads ``?sort=`` with exactly those values."""

    def __init__(self, columns: Mapping[str, Any], *, id_column: Any, default: str) -> None:
        self.columns = dict(columns)
        self.id_column = id_column
        self.values = tuple(v for name in self.columns for v in (name, f"-{name}"))
        if default not in self.values:
            raise ValueError(f"default sort {default!r} is not one of {self.values}")
        self.default = default
        self.dependency = self._dependency()

    def keys(self, sort: str | None = None) -> list[OrderKey]:
        return sort_order(sort or self.default, self.columns, self.id_column)

    def _dependency(self) -> Any:
        async def sort_parameter(sort: str) -> str:
            return sort

        annotation = Annotated[
            Literal[self.values],  # type: ignore[valid-type]
            Query(description="a field, '-' for descending"),
        ]
        parameter = inspect.Parameter(
            "sort", inspect.Parameter.KEYWORD_ONLY, default=self.default, annotation=annotation
        )
        sort_parameter.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [parameter], return_annotation=str
        )
        return sort_parameter


def where_all(stmt: S, *clauses: Any) -> S:
    for clause in clauses:
        if clause is not None:
            stmt = stmt.where(clause)
    return stmt


def eq(column_: Any, value: Any) -> Any:
    return None if value is None else column_ == value


def contains_text(q: str | None, *columns: Any) -> Any:
    if not q:
        return None
    escaped = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(*(func.lower(c).like(f"%{escaped}%", escape="\\") for c in columns))


def json_list_contains(session: AsyncSession, json_column: Any, value: str | None) -> Any:
    if value is None:
        return None
    if session.get_bind().dialect.name == "postgresql":
        return cast(json_column, postgresql.JSONB).contains([value])
    elements = func.json_each(json_column).table_valued("value")
    return exists(select(1).select_from(elements).where(column("value") == value))


def as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# -- links to other plugins' records ---------------------------------------------------


async def resolve_entity(
    context: Any, kind: str, id: uuid.UUID | str, principal: Principal | None
) -> Mapping[str, Any] | None:
    """The record as its plugin shows it to ``principal``; ``None`` if absent or hidden."""
    hook = context.plugins.pm.hook.crm2_resolve_entity
    answer = hook(kind=kind, id=str(id), principal=principal, context=context)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer if isinstance(answer, Mapping) else None


# -- CSV -------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBERISH = re.compile(r"^[+-][\d\s().,/-]*$")


@dataclass(frozen=True)
class CsvColumns:
    names: tuple[str, ...]
    version: int = 1


def safe_cell(value: str) -> str:
    if value.startswith(_FORMULA_START) and not _NUMBERISH.match(value):
        return "'" + value
    return value


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return safe_cell(";".join(str(v) for v in value))
    return safe_cell(str(value))


def render(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()


FetchPage = Callable[[AsyncSession, PageParams], Awaitable[tuple[list[R], str | None]]]
RenderRows = Callable[[AsyncSession, list[R]], Awaitable[Iterable[Sequence[Any]]]]


async def export_pages(
    session_factory: async_sessionmaker[AsyncSession],
    columns: CsvColumns,
    fetch: FetchPage[R],
    rows: RenderRows[R],
    page_size: int = 1000,
) -> AsyncIterator[str]:
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
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"',
            "X-Columns-Version": str(columns.version),
        },
    )
