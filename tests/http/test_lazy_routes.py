"""Routes declared with ``crm2_core.api.APIRouter`` build their request handling on first use."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter as FastAPIRouter
from fastapi import Depends, FastAPI, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel

from crm2_core.api import APIRouter


class Item(BaseModel):
    id: int
    name: str


async def _limit(limit: Annotated[int, Query(ge=1)] = 10) -> int:
    return limit


def _router(cls: type[FastAPIRouter] = APIRouter) -> FastAPIRouter:
    router = cls(prefix="/api/v1/lazy", tags=["lazy"])

    @router.get("/items/{item_id}")
    async def get_item(item_id: int, limit: Annotated[int, Depends(_limit)]) -> Item:
        return Item(id=item_id, name=f"limit {limit}")

    @router.post("/items", status_code=201)
    async def create_item(body: Item) -> Item:
        return body

    return router


def _built(route: APIRoute) -> bool:
    return "dependant" in route.__dict__


async def test_a_declared_route_has_its_path_and_names_but_no_dependant_yet() -> None:
    router = _router()
    routes = [r for r in router.routes if isinstance(r, APIRoute)]

    assert [(r.path, r.name, r.methods, r.tags) for r in routes] == [
        ("/api/v1/lazy/items/{item_id}", "get_item", {"GET"}, ["lazy"]),
        ("/api/v1/lazy/items", "create_item", {"POST"}, ["lazy"]),
    ]
    assert not any(_built(r) for r in routes)

    app = FastAPI()
    app.include_router(router)
    assert not any(_built(r) for r in routes)  # mounting builds nothing either


async def test_lazy_routes_answer_validate_and_document_as_fastapis_own() -> None:
    def app_with(router: FastAPIRouter) -> FastAPI:
        for route in router.routes:
            if isinstance(route, APIRoute):
                route.operation_id = f"lazy_{route.name}"  # as the core names them when mounting
        app = FastAPI()
        app.include_router(router)
        return app

    declared = _router()
    lazy, eager = app_with(declared), app_with(_router(FastAPIRouter))

    assert lazy.openapi() == eager.openapi()
    assert lazy.openapi()["paths"]["/api/v1/lazy/items"]["post"]["operationId"] == (
        "lazy_create_item"
    )
    transport = httpx.ASGITransport(app=lazy)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        got = await client.get("/api/v1/lazy/items/7", params={"limit": 3})
        assert got.status_code == 200, got.text
        assert got.json() == {"id": 7, "name": "limit 3"}
        assert (await client.get("/api/v1/lazy/items/7", params={"limit": 0})).status_code == 422
        made = await client.post("/api/v1/lazy/items", json={"id": 1, "name": "x"})
        assert made.status_code == 201
        assert (await client.post("/api/v1/lazy/items", json={"id": "x"})).status_code == 422
    # Built now, keeping the operation id given after the declaration.
    assert [(_built(r), r.operation_id) for r in declared.routes if isinstance(r, APIRoute)] == [
        (True, "lazy_get_item"),
        (True, "lazy_create_item"),
    ]
