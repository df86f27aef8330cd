"""The HTTP side of keyset pagination: ``limit`` / ``cursor`` parameters and the page body.

The query and the cursor live in ``crm2_core.db.pagination``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, TypeAdapter

from crm2_core.db.pagination import DEFAULT_LIMIT, PageParams
from crm2_core.http.deps import context_of

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list endpoint: ``{"items": [...], "next_cursor": "..." | null}``."""

    items: list[T]
    next_cursor: str | None = None


# The two pagination parameters, declared once: ``page_params`` and every list query
# model (``kit.query.list_query``) read them with these types, limits and descriptions.
Limit = Annotated[int, Query(ge=1, description="items per page (capped by the server)")]
Cursor = Annotated[
    str | None, Query(max_length=1024, description="next_cursor of the previous page")
]


def page_of(request: Request, limit: int, cursor: str | None) -> PageParams:
    """The page asked for, its ``limit`` capped by ``CRM2_PAGE_MAX_LIMIT``."""
    cap: int = context_of(request).settings.page_max_limit
    return PageParams(limit=min(limit, cap), cursor=cursor)


async def page_params(
    request: Request, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> PageParams:
    return page_of(request, limit, cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


@cache
def _page_adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(Page[model])  # type: ignore[valid-type]


def page_response(
    model: type[BaseModel], items: Sequence[Any], next_cursor: str | None
) -> Response:
    """The JSON of ``Page[model]``, serialised once: what FastAPI would answer for a route
    declared with ``response_model=Page[model]`` returning that page (the same validation,
    the same bytes), without its second pass over the response. The route keeps
    ``response_model`` for its OpenAPI document.

    ``items`` may be ``model`` instances or their fields as dicts: dicts are validated
    here, all in one call, which is cheaper than a ``model_validate`` per row.
    """
    adapter = _page_adapter(model)
    page = adapter.validate_python({"items": items, "next_cursor": next_cursor})
    return Response(adapter.dump_json(page, by_alias=True), media_type="application/json")
