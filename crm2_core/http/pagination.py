"""The HTTP side of keyset pagination: ``limit`` / ``cursor`` parameters and the page body.

The query and the cursor live in ``crm2_core.db.pagination``.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from crm2_core.db.pagination import DEFAULT_LIMIT, PageParams

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list endpoint: ``{"items": [...], "next_cursor": "..." | null}``."""

    items: list[T]
    next_cursor: str | None = None


async def page_params(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, description="items per page (capped by the server)")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="next_cursor of the previous page")
    ] = None,
) -> PageParams:
    cap: int = request.app.state.context.settings.page_max_limit
    return PageParams(limit=min(limit, cap), cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]
