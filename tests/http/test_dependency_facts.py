"""FastAPI's per-request questions about a dependency, answered once: the same answers."""

from __future__ import annotations

import collections.abc
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.dependencies import models, utils
from fastapi.dependencies.models import Dependant
from test_async_dependencies import _api_routes  # the app's leaf routes, through included routers

from crm2_core.http import dependency_facts
from crm2_core.testing import Crm2TestApp

SOLVER = vars(utils)  # what FastAPI's dependency solver calls, by name


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


async def test_every_routes_dependencies_get_fastapis_own_answers(crm2: Crm2TestApp) -> None:
    dependants = [d for r in _api_routes(crm2.app.routes) for d in _dependants(r.dependant)]
    assert SOLVER["_get_cache_key"] is dependency_facts._get_cache_key
    assert len(dependants) > 100
    for _ in range(2):  # asked, then answered from the memo
        for dependant in dependants:
            assert SOLVER["_get_cache_key"](dependant=dependant) == models._get_cache_key(
                dependant=dependant
            )
            call = dependant.call
            assert SOLVER["_is_gen_callable"](call) == models._is_gen_callable(call)
            assert SOLVER["_is_async_gen_callable"](call) == models._is_async_gen_callable(call)
            assert SOLVER["_is_coroutine_callable"](call) == models._is_coroutine_callable(call)


async def _value() -> str:
    return "declared"


def test_a_dependant_whose_call_changed_is_asked_again() -> None:
    dependency_facts.install()
    dependant = Dependant(call=_value)
    assert SOLVER["_get_cache_key"](dependant=dependant)[0] is _value

    async def other() -> str:
        return "other"

    dependant.call = other
    assert SOLVER["_get_cache_key"](dependant=dependant)[0] is other


def test_the_memo_forgets_at_its_bound() -> None:
    dependency_facts.install()
    kept = [Dependant(call=_value) for _ in range(dependency_facts._BOUND + 10)]
    for dependant in kept:
        SOLVER["_get_cache_key"](dependant=dependant)
    assert 0 < len(dependency_facts._cache_keys) <= dependency_facts._BOUND


def test_the_solvers_callable_alias_is_built_once_and_is_the_same_alias() -> None:
    dependency_facts.install()
    callable_ = SOLVER["Callable"]
    assert callable_[..., Any] is callable_[..., Any]  # built once, not per sub-dependency
    assert callable_[..., Any] == collections.abc.Callable[..., Any]
    assert callable_[[int], str] == collections.abc.Callable[[int], str]
    assert callable_.__name__ == "Callable"  # anything else is the real one's


CLOSED: list[str] = []


async def _resource() -> AsyncIterator[str]:
    yield "opened"
    CLOSED.append("resource")


async def _overridden() -> str:
    return "overridden"


async def _endpoint(
    value: Annotated[str, Depends(_value)], held: Annotated[str, Depends(_resource)]
) -> dict[str, Any]:
    return {"value": value, "held": held}


async def test_overrides_and_generator_dependencies_still_work() -> None:
    """Overrides build a new dependant per request; a generator's clean-up still runs."""
    dependency_facts.install()
    CLOSED.clear()
    app = FastAPI()
    app.add_api_route("/", _endpoint)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/")).json() == {"value": "declared", "held": "opened"}
        app.dependency_overrides[_value] = _overridden
        for _ in range(3):
            assert (await client.get("/")).json() == {"value": "overridden", "held": "opened"}
        app.dependency_overrides.clear()
        assert (await client.get("/")).json() == {"value": "declared", "held": "opened"}
    assert CLOSED == ["resource"] * 5
