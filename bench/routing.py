"""Routing alone, with every plugin: the pattern matches a request tries and the routing
decision's time, FastAPI's loop over every route against crm2's index, in one process.

    .venv/bin/python bench/routing.py [--rounds 5] [--number 2000]

Every endpoint, and the router's default, is replaced by a no-op ASGI app, so the time
is the router's alone: from the app router's call to the chosen endpoint (or the 405,
the redirect, the 404), as each request of the app pays it. Rounds alternate linear and
indexed; the table gives the medians and their ratio. Not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import routing as fastapi_routing
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm2_core.http.app import create_app
from crm2_core.http.route_index import IndexedRouter, unsupported_reason
from crm2_core.settings import Settings

REQUESTS = (
    ("GET /auth/me", "GET", "/api/v1/auth/me"),
    ("GET /plugins", "GET", "/api/v1/plugins"),
    ("GET deals list", "GET", "/api/v1/deals/deals"),
    ("GET tasks list", "GET", "/api/v1/tasks/tasks"),
    ("POST a deal", "POST", "/api/v1/deals/deals"),
    ("PATCH a deal", "PATCH", f"/api/v1/deals/deals/{uuid.UUID(int=1)}"),
    ("PUT /auth/me (405)", "PUT", "/api/v1/auth/me"),
    ("GET a 404", "GET", "/api/v1/nope"),
)


async def _noop(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


def _app(directory: Path) -> tuple[Any, IndexedRouter]:
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite+aiosqlite:///{directory / 'routing.db'}",
        redis_url=None,
    )
    secret = {"auth": {"jwt_secret": "crm2-bench-routing-not-a-secret-0123456789"}}
    app = create_app(settings, plugin_settings=secret)
    indexed = app.router.middleware_stack
    if not isinstance(indexed, IndexedRouter):
        raise SystemExit(f"the route index is off: {unsupported_reason(app)}")
    for entry in indexed.built().entries:
        leaf = entry.payload
        if not leaf.chain:
            leaf.top.app = _noop
        elif isinstance(leaf.candidate.original_route, fastapi_routing.APIRoute):
            leaf.candidate.app = _noop
        else:
            leaf.candidate.starlette_route.app = _noop
    app.router.default = _noop
    return app, indexed


def _scope(app: Any, method: str, path: str) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"crm2.bench")],
        "app": app,
    }


async def _dispatch(router: ASGIApp, scope: Scope) -> None:
    # The 405 and the 404 are raised, for the app's exception middleware to render.
    with contextlib.suppress(HTTPException):
        await router(scope, _receive, _send)


async def _microseconds(router: ASGIApp, app: Any, method: str, path: str, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        await _dispatch(router, _scope(app, method, path))
    return (time.perf_counter() - start) / number * 1e6


async def _matches(
    indexed: IndexedRouter, router: ASGIApp, app: Any, method: str, path: str
) -> int:
    count = 0
    patched = []
    for entry in indexed.built().entries:
        leaf = entry.payload
        route = leaf.top if not leaf.chain else leaf.candidate
        if leaf.chain and isinstance(route.original_route, fastapi_routing.APIRoute):
            route = route.original_route
        original = route.matches

        def counting(scope: Scope, _original: Any = original) -> Any:
            nonlocal count
            count += 1
            return _original(scope)

        route.matches = counting
        patched.append(route)
    try:
        await _dispatch(router, _scope(app, method, path))
    finally:
        for route in patched:
            del route.matches
    return count


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app, indexed = _app(Path(directory))
        print("| request | matches linear | matches indexed | µs linear | µs indexed | ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, method, path in REQUESTS:
            linear_n = await _matches(indexed, indexed.linear, app, method, path)
            indexed_n = await _matches(indexed, indexed, app, method, path)
            linear_us: list[float] = []
            indexed_us: list[float] = []
            for _ in range(args.rounds):
                for router, times in ((indexed.linear, linear_us), (indexed, indexed_us)):
                    times.append(await _microseconds(router, app, method, path, args.number))
            lin, ind = statistics.median(linear_us), statistics.median(indexed_us)
            print(
                f"| {label} | {linear_n} | {indexed_n} | {lin:.1f} | {ind:.1f} | {ind / lin:.3f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
