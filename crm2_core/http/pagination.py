"""The HTTP side of keyset pagination: ``limit`` / ``cursor`` parameters and the page body.

The query and the cursor live in ``crm2_core.db.pagination``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Annotated, Any, Generic, TypeVar, get_args

from asyncpg.pgproto.pgproto import UUID as DriverUUID
from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, GetCoreSchemaHandler, TypeAdapter
from pydantic_core import core_schema

from crm2_core.db.pagination import DEFAULT_LIMIT, PageParams
from crm2_core.http.deps import context_of
from crm2_core.http.page_json import plain_page

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
class _PageAdapters:
    plain: TypeAdapter[Any]  # ``Page[model]``
    uuids_as_text: TypeAdapter[Any]  # the same, its model's UUIDs written through ``str``
    uuid_fields: tuple[str, ...]  # the model's fields that hold a UUID


@cache
def _page_adapters(model: type[BaseModel]) -> _PageAdapters:
    fields = tuple(
        name
        for name, field in model.model_fields.items()
        if field.annotation is uuid.UUID or uuid.UUID in get_args(field.annotation)
    )
    plain: TypeAdapter[Any] = TypeAdapter(Page[model])  # type: ignore[valid-type]
    if not fields:  # nothing to write differently (``_driver_uuids`` never picks it)
        return _PageAdapters(plain, plain, fields)
    subclass = _uuids_as_text_model(model)
    text: TypeAdapter[Any] = TypeAdapter(Page[subclass])  # type: ignore[valid-type]
    return _PageAdapters(plain, text, fields)


def _uuids_as_text_model(model: type[BaseModel]) -> type[BaseModel]:
    """A subclass of ``model`` whose own UUID fields serialise to JSON through ``str``.

    A subclass, not a copy of the page's schema: pydantic serialises a model with the
    serialiser its class was built with, whatever the schema around it says."""

    def schema(cls: type[BaseModel], source: Any, handler: GetCoreSchemaHandler) -> Any:
        return _uuids_as_text(handler(source))

    namespace: dict[str, Any] = {"__module__": model.__module__, "__qualname__": model.__qualname__}
    namespace["__get_pydantic_core_schema__"] = classmethod(schema)
    return type(model.__name__, (model,), namespace)


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


def _driver_uuids(adapters: _PageAdapters, items: Sequence[Any]) -> bool:
    """Do the rows (dicts, or objects read by attribute) hold asyncpg's own UUID class?
    (Its ``str`` is the canonical text, as ``uuid.UUID``'s; another subclass's may not
    be, and keeps pydantic's way.)"""
    if not items or not adapters.uuid_fields:
        return False
    first = items[0]
    read = first.get if isinstance(first, dict) else partial(getattr, first)
    for name in adapters.uuid_fields:
        value = read(name, None)
        if value is not None:
            return type(value) is DriverUUID
    return False


def page_response(
    model: type[BaseModel], items: Sequence[Any], next_cursor: str | None
) -> Response:
    """The JSON of ``Page[model]``, serialised once: what FastAPI would answer for a route
    declared with ``response_model=Page[model]`` returning that page (the same validation,
    the same bytes), without its second pass over the response. The route keeps
    ``response_model`` for its OpenAPI document.

    ``items`` may be ``model`` instances, their fields as dicts or rows read by attribute
    (a model with ``from_attributes``): they are validated here, all in one call, which
    is cheaper than a ``model_validate`` per row.

    Rows read by asyncpg hold its own ``UUID`` class (a ``uuid.UUID`` subclass), which
    pydantic writes through its ``int`` property, computed in Python: a third of a deals
    page's serialisation. Its ``str`` is C, so fields given as such rows are validated
    into a subclass of ``model`` that writes its UUIDs through ``str``; ``uuid.UUID``'s
    own ``str`` is Python, so pages of ``uuid.UUID`` values (SQLite's, objects made in
    Python) keep pydantic's. Both give the same bytes.

    Rows of a model whose JSON is plain skip the model instances altogether
    (``crm2_core.http.page_json``): validated into dicts, written by orjson.
    """
    adapters = _page_adapters(model)
    driver_uuids = _driver_uuids(adapters, items)
    plain = plain_page(model) if items else None
    if plain is not None:
        body = plain.json(items, next_cursor, driver_uuids)
        if body is not None:
            return Response(body, media_type="application/json")
    # the subclass takes fields, not the model's own instances
    text = driver_uuids and not isinstance(items[0], BaseModel)
    adapter = adapters.uuids_as_text if text else adapters.plain
    page = adapter.validate_python({"items": items, "next_cursor": next_cursor})
    return Response(adapter.dump_json(page, by_alias=True), media_type="application/json")
