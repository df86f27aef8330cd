"""The routes every record has, declared once: GET, PATCH (If-Match) and DELETE by id.

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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Header, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.auth.deps import require
from crm2_core.http.deps import get_session
from crm2_core.http.etag import require_if_match
from crm2_core.kit.http import present
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

        if_match_p = _parameter(
            "if_match",
            Annotated[
                str | None, Header(description="the ETag of your last read; checked when sent")
            ],
            None,
        )
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
