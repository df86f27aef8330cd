"""Every route and dependency of the assembled app is ``async def``.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a thread
hand-off per request, which measured (bench scenario 1b) cut the shell's
throughput to a third. This walks every route of every installed plugin.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from crm2_core.testing import Crm2TestApp


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Leaf routes, looking through included routers (FastAPI nests them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


async def test_no_route_or_dependency_runs_in_the_thread_pool(crm2: Crm2TestApp) -> None:
    routes = list(_api_routes(crm2.app.routes))
    assert len(routes) > 20
    sync = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', call)}"
            for route in routes
            for call in _calls(route.dependant)
            if not _is_async(call)
        }
    )
    assert sync == [], "make these async def"
