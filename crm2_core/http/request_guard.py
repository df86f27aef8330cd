"""Checks every plugin route inherits, before its own dependencies run.

- A query parameter the route does not declare is a 400 naming it: ``?stauts=won``
  must not look like a filter that worked. The declared names come from the
  route's own signature and dependencies (query models included), so a plugin
  writes nothing for it. One that takes a single value, given twice, is a 400 too
  (``?owner=a&owner=b``: FastAPI takes the last, a proxy in front may check the first).
- A query or path value holding a character no text column can store (NUL) is a
  422 naming the parameter, as it is in a body (``crm2_core.schemas``).
- A body in another media type where the route reads JSON is a 415, not a 422
  about a "dictionary".
- An authenticated route authenticates first: no credentials is a 401 before
  anything the route's own dependencies say (a missing If-Match, say).

Installed by ``create_app`` as a dependency of every mounted router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi._compat.shared import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel

from crm2_core.errors import BadRequest, UnsupportedMediaType
from crm2_core.http.principal import current_principal
from crm2_core.schemas import unstorable_text


class UnknownQueryParameter(BadRequest):
    slug, title = "unknown-query-parameter", "Unknown query parameter"


class RepeatedQueryParameter(BadRequest):
    slug, title = "repeated-query-parameter", "Query parameter given more than once"


def _query_names(dependant: Dependant) -> dict[str, bool]:
    """The query names a route and its dependencies declare (a query model's fields too),
    each with whether it takes several values (a list: ``?status=a&status=b``)."""
    names: dict[str, bool] = {}
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, f in model.model_fields.items():
                names[f.alias or name] = field_annotation_is_sequence(f.annotation)
        else:
            names[field.alias] = field_annotation_is_sequence(model)
    for sub in dependant.dependencies:
        names.update(_query_names(sub))
    return names


Authenticate = Callable[[Request], Awaitable[object]]


def authenticator_of(dependant: Dependant) -> Authenticate | None:
    """``current_principal`` if ``dependant``'s tree uses it (the route is authenticated)."""
    if dependant.call is current_principal:
        return current_principal
    for sub in dependant.dependencies:
        found = authenticator_of(sub)
        if found is not None:
            return found
    return None


class _RouteFacts:
    __slots__ = ("authenticate", "json_body", "query_names", "single_valued")

    def __init__(self, route: APIRoute) -> None:
        declared = _query_names(route.dependant)
        self.query_names = frozenset(declared)
        self.single_valued = frozenset(name for name, many in declared.items() if not many)
        self.authenticate = authenticator_of(route.dependant)
        body = route.body_field
        self.json_body = body is not None and not isinstance(body.field_info, Form)


def route_facts(route: APIRoute) -> _RouteFacts:
    facts: _RouteFacts | None = route.__dict__.get("_crm2_facts")
    if facts is None:
        facts = _RouteFacts(route)
        route.__dict__["_crm2_facts"] = facts
    return facts


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def guard_request(request: Request) -> None:
    """The checks above, for the route that matched ``request``."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    facts = route_facts(route)
    if facts.authenticate is not None:
        # Who is asking comes first: a 401 before any 400/428 about the request itself
        # (the answer is cached in the scope, the route's own dependency reuses it).
        await facts.authenticate(request)
    query = request.query_params
    unknown = sorted({name for name in query if name not in facts.query_names})
    if unknown:
        takes = ", ".join(sorted(facts.query_names)) or "none"
        raise UnknownQueryParameter(
            f"unknown query parameter {', '.join(unknown)}; this endpoint takes: {takes}",
            parameters=unknown,
        )
    if len(query.multi_items()) != len(query):  # some name is given more than once
        # FastAPI would take the last value; whatever sits in front may read the first.
        repeated = sorted(name for name in facts.single_valued if len(query.getlist(name)) > 1)
        if repeated:
            raise RepeatedQueryParameter(
                f"query parameter {', '.join(repeated)} takes one value and was given more "
                "than once; send it once",
                parameters=repeated,
            )
    errors = [
        {"type": "string_unstorable", "loc": (where, name), "msg": reason, "input": value}
        for where, items in (
            ("query", request.query_params.multi_items()),
            ("path", request.path_params.items()),
        )
        for name, value in items
        if isinstance(value, str) and (reason := unstorable_text(value))
    ]
    if errors:
        raise RequestValidationError(errors)
    if facts.json_body and request.scope.get("state", {}).get("body"):
        media_type = _media_type(request)
        if not _is_json(media_type):
            raise UnsupportedMediaType(
                f"this endpoint reads application/json, not {media_type or '(no Content-Type)'}"
            )
