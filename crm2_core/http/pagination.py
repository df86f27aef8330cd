"""The HTTP side of keyset pagination: ``limit`` / ``cursor`` parameters and the page body.

The query and the cursor live in ``crm2_core.db.pagination``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Generic, TypeVar, get_args

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, TypeAdapter
from pydantic_core import SchemaSerializer, core_schema

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


@dataclass(frozen=True)
class _PageSerialisers:
    adapter: TypeAdapter[Any]  # validates the page, and serialises it with uuid.UUID values
    uuids_as_text: SchemaSerializer  # the same bytes, each UUID written through ``str``
    uuid_fields: tuple[str, ...]  # the model's fields that hold a UUID


@cache
def _page_serialisers(model: type[BaseModel]) -> _PageSerialisers:
    adapter: TypeAdapter[Any] = TypeAdapter(Page[model])  # type: ignore[valid-type]
    fields = tuple(
        name
        for name, field in model.model_fields.items()
        if field.annotation is uuid.UUID or uuid.UUID in get_args(field.annotation)
    )
    return _PageSerialisers(adapter, SchemaSerializer(_uuids_as_text(adapter.core_schema)), fields)


def _uuids_as_text(schema: Any) -> Any:
    """A copy of a core schema whose UUIDs serialise to JSON through ``str``."""
    if isinstance(schema, list):
        return [_uuids_as_text(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copied = {key: _uuids_as_text(value) for key, value in schema.items()}
    if copied.get("type") == "uuid" and "serialization" not in copied:
        copied["serialization"] = core_schema.plain_serializer_function_ser_schema(
            str, when_used="json"
        )
    return copied


def _driver_uuids(serialisers: _PageSerialisers, items: Sequence[Any]) -> bool:
    """Do the rows hold a driver's own UUID class (asyncpg's) rather than ``uuid.UUID``?"""
    if not items or not serialisers.uuid_fields:
        return False
    first = items[0]
    for name in serialisers.uuid_fields:
        value = first.get(name) if isinstance(first, dict) else getattr(first, name, None)
        if value is not None:
            return type(value) is not uuid.UUID
    return False


def page_response(
    model: type[BaseModel], items: Sequence[Any], next_cursor: str | None
) -> Response:
    """The JSON of ``Page[model]``, serialised once: what FastAPI would answer for a route
    declared with ``response_model=Page[model]`` returning that page (the same validation,
    the same bytes), without its second pass over the response. The route keeps
    ``response_model`` for its OpenAPI document.

    ``items`` may be ``model`` instances or their fields as dicts: dicts are validated
    here, all in one call, which is cheaper than a ``model_validate`` per row.

    Rows read by asyncpg hold its own ``UUID`` class (a ``uuid.UUID`` subclass), which
    pydantic writes through its ``int`` property, computed in Python: a fifth of a deals
    page's serialisation. Its ``str`` is C, so such a page is written with a serialiser
    that calls ``str`` for every UUID; ``uuid.UUID``'s own ``str`` is Python, so pages of
    ``uuid.UUID`` values (SQLite's, objects made in Python) keep pydantic's. Both give
    the same bytes.
    """
    serialisers = _page_serialisers(model)
    adapter = serialisers.adapter
    page = adapter.validate_python({"items": items, "next_cursor": next_cursor})
    if _driver_uuids(serialisers, items):
        body = serialisers.uuids_as_text.to_json(page, by_alias=True)
    else:
        body = adapter.dump_json(page, by_alias=True)
    return Response(body, media_type="application/json")
