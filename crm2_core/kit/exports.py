"""The CSV export route of a collection, declared once.

::

    export_route(
        router, "/clients/export", permission="deals:export", filters=client_filters,
        sorts=CLIENT_SORTS, export=service.export_clients, columns=CLIENT_EXPORT,
        filename="clients", doc="The client list as CSV (same filters as the list), streamed.",
    )

``export(session_factory, principal, filters, sort)`` returns the CSV chunks
(``export_pages`` makes them: the header, then one keyset page at a time, each in
a short session); the route streams them as ``<filename>-<UTC time>.csv`` with
``X-Columns-Version``, each page after the header only while the caller still
holds every right it started with (``while_allowed``). The query is the list's:
the same filter dependency and the same declared sorts. Declare it before a
``/{id}`` route of the same prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.auth.deps import require
from crm2_core.context import AppContext
from crm2_core.db.pagination import PageParams
from crm2_core.errors import Unauthorized
from crm2_core.http.deps import ContextDep
from crm2_core.http.principal import permitted
from crm2_core.kit.csv import (
    EXPORT_PAGE_SIZE,
    CsvColumns,
    ExportStopped,
    csv_response,
    export_pages,
)
from crm2_core.kit.routes import _endpoint, _parameter
from crm2_core.kit.sorting import Sorts
from crm2_hookspecs import Principal

R = TypeVar("R")
F = TypeVar("F")
V = TypeVar("V")  # a Visibility, or a plugin's own rule object (tasks' TaskVisibility)
# A repository's list: ``(session, visibility, filters, sort, page) -> (rows, next cursor)``.
ListPage = Callable[[AsyncSession, V, F, str, PageParams], Awaitable[tuple[list[R], str | None]]]
Rows = Callable[[AsyncSession, list[R]], Awaitable[Iterable[Sequence[Any]]]]
Export = Callable[[async_sessionmaker[AsyncSession], Principal, Any, str], AsyncIterator[str]]


def export_route(
    router: APIRouter,
    path: str,
    *,
    permission: str,
    filters: Callable[..., Any],
    sorts: Sorts,
    export: Export,
    columns: CsvColumns,
    filename: str,
    doc: str = "The list as CSV (same filters and sort as the list), streamed.",
    name: str | None = None,
) -> None:
    """Add ``GET path``: the streamed CSV of what the caller's list would show."""
    parameters = [
        _parameter("principal", Annotated[Principal, Depends(require(permission))]),
        _parameter("context", ContextDep),
        _parameter("filters", Annotated[Any, Depends(filters)]),
        _parameter("sort", Annotated[str, Depends(sorts.dependency)]),
    ]

    async def exporting(principal: Principal, context: Any, filters: Any, sort: str) -> Any:
        chunks = export(context.session_factory, principal, filters, sort)
        return csv_response(
            while_allowed(chunks, context, principal, permission), filename, columns
        )

    router.add_api_route(
        path,
        _endpoint(exporting, parameters, StreamingResponse, doc),
        methods=["GET"],
        response_class=StreamingResponse,
        name=name or f"export_{filename}",
    )


async def while_allowed(
    chunks: AsyncIterator[str], context: AppContext, principal: Principal, permission: str
) -> AsyncIterator[str]:
    """``chunks`` (the header, then a page each), each page sent only while ``principal``
    stands and holds ``permission`` and every right it had at the start.

    A right removed mid-way stops the export before its next page
    (:class:`~crm2_core.kit.csv.ExportStopped`): which rights narrow what a list
    shows is each plugin's business, so losing any of them counts.
    """
    header = True
    async for chunk in chunks:
        if not header:
            try:
                now = await context.authenticator.recheck(principal)
            except Unauthorized as exc:
                raise ExportStopped(f"{principal.kind} {principal.id}: {exc.detail}") from None
            lost = principal.permissions - now.permissions
            if lost or not permitted(context, now, permission):
                raise ExportStopped(
                    f"{principal.kind} {principal.id} lost {', '.join(sorted(lost)) or permission}"
                )
        header = False
        yield chunk


def export_list(
    session_factory: async_sessionmaker[AsyncSession],
    columns: CsvColumns,
    list_page: ListPage[V, F, R],
    visibility: V,
    filters: F,
    sort: str,
    rows: Rows[R],
    page_size: int = EXPORT_PAGE_SIZE,
) -> AsyncIterator[str]:
    """The CSV chunks of what ``list_page`` shows ``visibility``: the body of a service's
    ``export`` (``rows`` turns one page of records into CSV rows, ``export_pages`` the rest).
    """

    async def fetch(session: AsyncSession, page: PageParams) -> tuple[list[R], str | None]:
        return await list_page(session, visibility, filters, sort, page)

    return export_pages(session_factory, columns, fetch, rows, page_size)
