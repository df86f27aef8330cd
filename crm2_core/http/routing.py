"""``APIRouter`` for plugins: routes that build their request handling on first use.

FastAPI builds a route's dependant (every parameter and sub-dependency analysed,
a pydantic field per parameter), its response field and its handler when the
route is declared, at import. A plugin's routes are then mounted with
``include_router``, and FastAPI builds all of that again for each mounted route
(its effective route, with the core's ``guard_request``) when a request first
reaches the router: the declared route's own build serves only the request guard's
facts (``crm2_core.http.request_guard``). Declared with this router, a route keeps
only what mounting and matching read (path, methods, name, tags, operation id,
whether it is in the schema) and builds the rest the first time anything else is
read, exactly as FastAPI would have built it (``crm2 serve`` with every plugin:
about 0.25 s of start-up CPU for ~180 routes).

A dependency may read one of its query parameters itself (``kit.query.list_query``
reads a list's whole query model from the query string): it names that parameter
in its ``OWN_QUERY`` attribute. The route keeps the parameter in its dependant (the
OpenAPI document and the request guard read it), and its request handler solves a
copy without it, so FastAPI's generic per-field extraction does not run per request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter as FastAPIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, _effective_route_context_var
from starlette.routing import compile_path, get_name

# What is set when the route is declared; everything else waits for its first use.
_KEPT = (
    "path",
    "endpoint",
    "name",
    "methods",
    "tags",
    "operation_id",
    "include_in_schema",
    "openapi_extra",
    "path_regex",
    "path_format",
    "param_convertors",
)


OWN_QUERY = "crm2_own_query"


def solving_dependant(dependant: Dependant) -> Dependant:
    """``dependant`` as the request handler solves it: without the query parameter each
    dependency names in its ``OWN_QUERY`` attribute (the same object when none does)."""
    subs = [solving_dependant(sub) for sub in dependant.dependencies]
    own = getattr(dependant.call, OWN_QUERY, None)
    # Only a dependency whose one parameter that FastAPI reads is that one: errors in
    # its others would otherwise be reported without those of the query it reads.
    params = [
        *dependant.query_params,
        *dependant.path_params,
        *dependant.header_params,
        *dependant.cookie_params,
        *dependant.body_params,
    ]
    if own is not None and [f.name for f in params] != [own]:
        own = None
    if own is None and all(a is b for a, b in zip(subs, dependant.dependencies, strict=True)):
        return dependant
    query = [f for f in dependant.query_params if f.name != own]
    return dataclasses.replace(dependant, dependencies=subs, query_params=query)


class LazyAPIRoute(APIRoute):
    """An ``APIRoute`` whose dependant, fields and handler are built when first read."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        state = self.__dict__
        state["_crm2_declared"] = (path, endpoint, options)
        name = options.get("name")
        state.update(
            path=path,
            endpoint=endpoint,
            name=name if name is not None else get_name(endpoint),
            methods={method.upper() for method in options.get("methods") or ("GET",)},
            tags=options.get("tags") or [],
            operation_id=options.get("operation_id"),
            include_in_schema=options.get("include_in_schema", True),
            openapi_extra=options.get("openapi_extra"),
        )
        state["path_regex"], state["path_format"], state["param_convertors"] = compile_path(path)

    def __getattr__(self, name: str) -> Any:
        # Called only for an attribute not set yet: the first read of a built one.
        if name.startswith("__") or "_crm2_declared" not in self.__dict__:
            raise AttributeError(name)
        self._build()
        return getattr(self, name)

    def _build(self) -> None:
        state = self.__dict__
        path, endpoint, options = state.pop("_crm2_declared")
        # What FastAPI sets to the same values, as it is now: changed since the
        # declaration, perhaps (the core names every operation when it mounts it).
        kept = {key: state[key] for key in _KEPT}
        APIRoute.__init__(self, path, endpoint, **options)
        state.update(kept)

    def get_route_handler(self) -> Any:
        # FastAPI (pinned to 0.165) builds a mounted route's handler with this set to
        # the effective route, whose dependant the handler then solves.
        context = _effective_route_context_var.get()
        route: Any = context if context is not None and context.original_route is self else self
        declared = route.dependant
        route.dependant = solving_dependant(declared)
        try:
            return super().get_route_handler()
        finally:
            route.dependant = declared


class APIRouter(FastAPIRouter):
    """FastAPI's ``APIRouter`` declaring ``LazyAPIRoute``s unless told another class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", LazyAPIRoute)
        super().__init__(*args, **kwargs)
