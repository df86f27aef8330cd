"""The routes every record has, declared once: GET, PATCH (If-Match) and DELETE by id,
and the list (``list_route``) and create (``create_route``) routes of a collection.

::

    record_routes(
        router, "/clients/{client_id}", ClientPublic.model_validate,
        get=service.get_client, update=(ClientUpdate, service.update_client),
        delete=service.delete_client, permissions=PERMISSIONS,
        docs=("One client.", "Change a client (If-Match required).", "Delete a client."),
    )

The service functions keep one shape: ``get(session, principal, id)``,
``update(session, principal, id, if_match, body)`` and
``delete(session, principal, id, if_match | None)``; a DELETE checks an
``If-Match`` when one is sent. Routes with more parameters stay hand-written.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.auth.deps import require
from crm2_core.http.deps import get_session
from crm2_core.http.etag import OptionalIfMatch, require_if_match
from crm2_core.http.pagination import Page, PageDep, page_response
from crm2_core.kit.http import created, present
from crm2_core.kit.query import ListQuery
from crm2_core.kit.sorting import Sorts
from crm2_hookspecs import Principal

Get = Callable[[AsyncSession, Principal, uuid.UUID], Awaitable[Any]]
Update = Callable[[AsyncSession, Principal, uuid.UUID, str, Any], Awaitable[Any]]
Delete = Callable[[AsyncSession, Principal, uuid.UUID, str | None], Awaitable[Any]]


@dataclass(frozen=True)
class Permissions:
    """A plugin's permission names for reading, writing and deleting its records."""

    read: str
    write: str
    delete: str


def _parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _endpoint(
    body: Callable[..., Awaitable[Any]], parameters: list[Any], returns: Any, doc: str
) -> Callable[..., Awaitable[Any]]:
    """``body`` with the signature FastAPI reads (what it injects, and the OpenAPI text)."""

    async def endpoint(**kwargs: Any) -> Any:
        return await body(**kwargs)

    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    endpoint.__doc__ = doc
    return endpoint


def record_routes(
    router: APIRouter,
    path: str,
    public: Callable[[Any], BaseModel],
    *,
    response_model: type[BaseModel],
    permissions: Permissions,
    get: Get,
    update: tuple[type[BaseModel], Update] | None = None,
    delete: Delete | None = None,
    docs: tuple[str, str, str] = ("One record.", "Change a record.", "Delete a record."),
) -> None:
    """Add GET / PATCH / DELETE ``path`` (whose one path parameter is the record's id)."""
    id_name = path.rsplit("{", 1)[1].rstrip("}")
    session_p = _parameter(
        "session", Annotated[AsyncSession, Depends(get_session, scope="function")]
    )
    response_p = _parameter("response", Response)
    id_p = _parameter(id_name, uuid.UUID)

    def who(permission: str) -> Any:
        return _parameter("principal", Annotated[Principal, Depends(require(permission))])

    async def read(
        response: Response, session: AsyncSession, principal: Principal, **ids: Any
    ) -> Any:
        return present(response, cast(Any, public(await get(session, principal, ids[id_name]))))

    router.add_api_route(
        path,
        _endpoint(
            read, [id_p, who(permissions.read), session_p, response_p], response_model, docs[0]
        ),
        methods=["GET"],
        response_model=response_model,
        name=f"get_{id_name.removesuffix('_id')}",
    )
    if update is not None:
        body_model, change = update

        async def patch(
            response: Response,
            session: AsyncSession,
            principal: Principal,
            body: Any,
            if_match: str,
            **ids: Any,
        ) -> Any:
            row = await change(session, principal, ids[id_name], if_match, body)
            return present(response, cast(Any, public(row)))

        parameters = [
            id_p,
            _parameter("body", body_model),
            _parameter("if_match", Annotated[str, Depends(require_if_match)]),
            who(permissions.write),
            session_p,
            response_p,
        ]
        router.add_api_route(
            path,
            _endpoint(patch, parameters, response_model, docs[1]),
            methods=["PATCH"],
            response_model=response_model,
            name=f"update_{id_name.removesuffix('_id')}",
        )
    if delete is not None:
        remove = delete

        async def drop(
            session: AsyncSession, principal: Principal, if_match: str | None, **ids: Any
        ) -> Response:
            await remove(session, principal, ids[id_name], if_match)
            return Response(status_code=status.HTTP_204_NO_CONTENT)

        if_match_p = _parameter("if_match", OptionalIfMatch, None)
        router.add_api_route(
            path,
            _endpoint(
                drop, [id_p, who(permissions.delete), session_p, if_match_p], Response, docs[2]
            ),
            methods=["DELETE"],
            status_code=status.HTTP_204_NO_CONTENT,
            response_class=Response,
            name=f"delete_{id_name.removesuffix('_id')}",
        )


# -- list and create ---------------------------------------------------------------------

_PATH_IDS = re.compile(r"{(\w+)}")


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")


def _ids(path: str) -> list[str]:
    return _PATH_IDS.findall(path)


def _extra(params: Mapping[str, Any] | None) -> list[Any]:
    """``{"force": Annotated[bool, Query(...)]}`` → keyword parameters (default: the
    ``Annotated``'s own default when given as ``(annotation, default)``)."""
    out = []
    for name, spec in (params or {}).items():
        if isinstance(spec, tuple):
            out.append(_parameter(name, spec[0], spec[1]))
        else:
            out.append(_parameter(name, spec))
    return out


def list_route(
    router: APIRouter,
    path: str,
    public: Callable[[Any], BaseModel | Mapping[str, Any]],
    *,
    response_model: type[BaseModel],
    permission: str,
    fetch: Callable[..., Awaitable[tuple[list[Any], str | None]]],
    query: Callable[..., Awaitable[ListQuery[Any]]] | None = None,
    filters: Any = None,
    sorts: Sorts | None = None,
    params: Mapping[str, Any] | None = None,
    with_principal: bool = True,
    doc: str = "Records, cursor-paginated.",
    name: str | None = None,
) -> None:
    """Add ``GET path``: one page of ``fetch(session, principal, *path_ids, page=…, filters=…,
    sort=…, **params)``, each row shown as ``public(row)``: the response model, or its
    fields as a dict (validated with the whole page at once: cheaper per row).

    ``query`` is the list's ``list_query`` dependency: ``page``, ``filters`` (when it
    has filters) and ``sort`` (when it has ``Sorts``) come from it, read at once.
    Without it, ``filters`` is a FastAPI dependency returning the filter object and
    ``sorts`` the declared sort orders (``?sort=``), read separately. ``params`` adds
    more query parameters by name.
    """
    if query is not None and (filters is not None or sorts is not None):
        raise TypeError("give query, or filters and sorts, not both")
    ids = _ids(path)
    parameters = [_parameter(i, uuid.UUID) for i in ids]
    parameters += [
        _parameter("principal", Annotated[Principal, Depends(require(permission))]),
        _parameter("session", Annotated[AsyncSession, Depends(get_session, scope="function")]),
    ]
    if query is not None:
        parameters.append(_parameter("query", Annotated[ListQuery[Any], Depends(query)]))
        has_filters = getattr(query, "filters_type", None) is not None
        has_sort = getattr(query, "sorts", None) is not None
    else:
        parameters.append(_parameter("page", PageDep))
    if filters is not None:
        parameters.append(_parameter("filters", Annotated[Any, Depends(filters)]))
    if sorts is not None:
        parameters.append(_parameter("sort", Annotated[str, Depends(sorts.dependency)]))
    parameters += _extra(params)

    # ``public`` is the model's own validation: page_response validates the page's rows
    # at once, as they are
    as_they_are = public == response_model.model_validate

    async def listing(session: AsyncSession, principal: Principal, **kwargs: Any) -> Any:
        positional = [kwargs.pop(i) for i in ids]
        first = (session, principal) if with_principal else (session,)
        asked: ListQuery[Any] | None = kwargs.pop("query", None)
        if asked is not None:
            kwargs["page"] = asked.page
            if has_filters:
                kwargs["filters"] = asked.filters
            if has_sort:
                kwargs["sort"] = asked.sort
        rows, cursor = await fetch(*first, *positional, **kwargs)
        return page_response(
            response_model, rows if as_they_are else [public(r) for r in rows], cursor
        )

    page_model = Page[response_model]  # type: ignore[valid-type]
    router.add_api_route(
        path,
        _endpoint(listing, parameters, page_model, doc),
        methods=["GET"],
        response_model=page_model,
        name=name or f"list_{_slug(path)}",
    )


def create_route(
    router: APIRouter,
    path: str,
    public: Callable[[Any], BaseModel],
    *,
    response_model: type[BaseModel],
    permission: str,
    body: type[BaseModel],
    create: Callable[..., Awaitable[Any]],
    location: str,
    params: Mapping[str, Any] | None = None,
    with_principal: bool = True,
    doc: str = "Create a record.",
    name: str | None = None,
) -> None:
    """Add ``POST path``: ``create(session, principal, *path_ids, body, **params)``, answered
    201 with ``Location`` (``location`` with ``{id}``, under the router's prefix) and ETag."""
    ids = _ids(path)
    parameters = [_parameter(i, uuid.UUID) for i in ids]
    parameters += [
        _parameter("body", body),
        _parameter("principal", Annotated[Principal, Depends(require(permission))]),
        _parameter("session", Annotated[AsyncSession, Depends(get_session, scope="function")]),
        _parameter("response", Response),
    ]
    parameters += _extra(params)

    async def creating(
        session: AsyncSession, principal: Principal, body: Any, response: Response, **kwargs: Any
    ) -> Any:
        positional = [kwargs.pop(i) for i in ids]
        first = (session, principal) if with_principal else (session,)
        row = await create(*first, *positional, body, **kwargs)
        href = router.prefix + location.format(id=getattr(row, "id"))  # noqa: B009
        return created(response, href, cast(Any, public(row)))

    router.add_api_route(
        path,
        _endpoint(creating, parameters, response_model, doc),
        methods=["POST"],
        response_model=response_model,
        status_code=status.HTTP_201_CREATED,
        name=name
        or f"create_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
    )
