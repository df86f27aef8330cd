"""Baseline for scenario 7: a bare FastAPI app with N generated routes.

``python bench/baselines/bare_fastapi.py --routes N --port P`` builds ``/healthz``
plus N - 1 generated routes (path parameters, a query parameter, a request or
response model, as a plugin's CRUD routes would have) and serves them with one
uvicorn worker on 127.0.0.1.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    id: int
    name: str
    note: str | None = None


def _add(router: APIRouter, i: int) -> None:
    kind = i % 4
    if kind == 0:

        async def list_items(limit: int = 50) -> list[Item]:
            return []

        router.add_api_route(f"/r{i}", list_items, methods=["GET"])
    elif kind == 1:

        async def get_item(item_id: int) -> Item:
            return Item(id=item_id, name="x")

        router.add_api_route(f"/r{i}/{{item_id}}", get_item, methods=["GET"])
    elif kind == 2:

        async def create_item(body: Item) -> Item:
            return body

        router.add_api_route(f"/r{i}", create_item, methods=["POST"], status_code=201)
    else:

        async def delete_item(item_id: int) -> None:
            return None

        router.add_api_route(f"/r{i}/{{item_id}}", delete_item, methods=["DELETE"])


def count_routes(routes: list[Any]) -> int:
    """Leaf routes, looking through included routers (FastAPI >= 0.16x nests them)."""
    total = 0
    for route in routes:
        inner = getattr(route, "original_router", None)
        total += count_routes(inner.routes) if inner is not None else 1
    return total


def build(routes: int) -> FastAPI:
    app = FastAPI(title="bare")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    router = APIRouter(prefix="/api/v1/bare")
    for i in range(max(routes - count_routes(app.routes), 0)):
        _add(router, i)
    app.include_router(router)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(args.routes), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
