"""The indexed router decides exactly as FastAPI's loop over every route, trying far fewer."""

from __future__ import annotations

import inspect
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fastapi import APIRouter, FastAPI
from fastapi import routing as fastapi_routing
from starlette.convertors import CONVERTOR_TYPES
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm2_core.http import route_index
from crm2_core.http.app import create_app
from crm2_core.http.route_index import IndexedRouter, _Leaf, unsupported_reason
from crm2_core.settings import Settings
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_JWT_SECRET

METHODS = ("GET", "HEAD", "POST", "PATCH", "BREW")
SAMPLES = {"str": "x1", "int": "7", "path": "a/b", "float": "1.5", "uuid": str(uuid.UUID(int=5))}
EXTRA_PATHS = (
    "",
    "/",
    "//",
    "/api",
    "/api/",
    "/api/v1",
    "/api/v1/",
    "/api/v1/deals",
    "/api/v1/deals/",
    "/api/v1/nope",
    "/api//v1/auth/me",
    "//api/v1/auth/me",
    "/api/v1/auth/me\n",
    "/api/v1/auth/me/\n",
    "/api/v1/deals/deals/a/b",
    "/api/v1/deals/deals/a%2Fb",
    "/api/v1/deals/deals/é",
    "/api/v1/deals/deals/x y",
    "/docs",
    "/docs/",
    "/docs/assets",
    "/docs/assets/",
    "/docs/assets/swagger-ui.css",
    "/docs/assets/a/b/../c",
    "/docs/assetsx",
    "/openapi.json/",
    "/nope",
    "/nope/",
)


def _app(settings: Settings) -> tuple[FastAPI, IndexedRouter]:
    every_plugin = settings.model_copy(update={"plugins": None})
    app = create_app(every_plugin, plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}})
    indexed = app.router.middleware_stack
    assert isinstance(indexed, IndexedRouter), unsupported_reason(app)
    return app, indexed


def _routes_of(indexed: IndexedRouter) -> Iterator[Any]:
    """Every route object whose ``matches`` the router calls (top-level and included)."""
    for entry in indexed.built().entries:
        leaf: _Leaf = entry.payload
        context = leaf.candidate
        if not leaf.chain:
            yield leaf.top
        elif isinstance(context.original_route, fastapi_routing.APIRoute):
            yield context.original_route
        else:
            yield context


class Recorder:
    """Replaces every endpoint of a throw-away app with one that records the scope."""

    def __init__(self, app: FastAPI, indexed: IndexedRouter) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for entry in indexed.built().entries:
            leaf: _Leaf = entry.payload
            context = leaf.candidate
            if not leaf.chain:
                leaf.top.app = self._endpoint(f"top:{entry.order}")  # type: ignore[attr-defined]
            elif isinstance(context.original_route, fastapi_routing.APIRoute):
                context.app = self._endpoint(f"route:{entry.order}")
            else:
                context.starlette_route.app = self._endpoint(f"other:{entry.order}")
        app.router.default = self._endpoint("default")

    def _endpoint(self, name: str) -> ASGIApp:
        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            seen = dict(scope)
            if "fastapi" in seen:
                seen["fastapi"] = dict(seen["fastapi"])
            self.calls.append((name, seen))

        return endpoint


async def _outcome(dispatch: ASGIApp, recorder: Recorder, scope: Scope) -> list[Any]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    recorder.calls.clear()
    try:
        await dispatch(scope, receive, send)
        raised: Any = None
    except HTTPException as exc:
        raised = (exc.status_code, exc.headers)
    return [raised, sent, list(recorder.calls), scope]


def _scope(
    path: str,
    method: str = "GET",
    *,
    kind: str = "http",
    root_path: str = "",
    app: Any = None,
    host: bytes = b"crm2.test",
) -> Scope:
    scope: dict[str, Any] = {
        "type": kind,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", host)],
        "scheme": "http" if kind == "http" else "ws",
        "server": ("crm2.test", 80),
    }
    if kind == "http":
        scope["method"] = method
    if app is not None:
        scope["app"] = app
    return scope


def _paths(indexed: IndexedRouter) -> list[str]:
    paths: set[str] = set(EXTRA_PATHS)
    for route in _routes_of(indexed):
        path_format = getattr(route, "path_format", None)
        convertors = getattr(route, "param_convertors", {})
        if path_format is None:
            continue
        for name, convertor in convertors.items():
            kind = next(k for k, v in CONVERTOR_TYPES.items() if v is convertor)
            path_format = path_format.replace("{" + name + "}", SAMPLES[kind])
        paths.update({path_format, path_format + "/", path_format + "/x", path_format + "x"})
        paths.add(path_format.rstrip("/") or "/")
    return sorted(paths)


def _relative_location(linear: list[Any], fast: list[Any]) -> None:
    """The index redirects where FastAPI does, to the same path, but its ``Location`` is
    relative (``slash_redirect.py``): check that, then compare the rest."""
    for sent_linear, sent_fast in zip(linear[1], fast[1], strict=False):
        if sent_linear.get("type") != "http.response.start" or sent_linear["status"] != 307:
            continue
        ours = dict(sent_fast["headers"]).get(b"location", b"").decode()
        theirs = dict(sent_linear["headers"])[b"location"].decode()
        assert not urlsplit(ours).netloc and ours.startswith("/"), ours
        assert unquote(urlsplit(ours).path) == unquote(urlsplit(theirs).path), (ours, theirs)
        for sent in (sent_linear, sent_fast):
            sent["headers"] = [(k, v) for k, v in sent["headers"] if k != b"location"]


async def _same(app: FastAPI, indexed: IndexedRouter, recorder: Recorder, scope: Scope) -> None:
    linear = await _outcome(indexed.linear, recorder, dict(scope))
    fast = await _outcome(indexed, recorder, dict(scope))
    _relative_location(linear, fast)
    assert fast == linear, (scope["type"], scope.get("method"), scope["path"])


async def test_every_path_and_method_is_routed_as_fastapi_routes_it(
    crm2_settings: Settings,
) -> None:
    app, indexed = _app(crm2_settings)
    recorder = Recorder(app, indexed)
    paths = _paths(indexed)
    assert len(paths) > 500
    for path in paths:
        for method in METHODS:
            await _same(app, indexed, recorder, _scope(path, method, app=app))
        await _same(app, indexed, recorder, _scope(path, "GET"))  # outside an app: no raise
        await _same(app, indexed, recorder, _scope(path, "DELETE", root_path="/crm"))
        await _same(app, indexed, recorder, _scope(path, kind="websocket", app=app))


async def test_a_wrong_method_is_the_first_partial_match_405_with_its_allow(
    crm2_settings: Settings,
) -> None:
    app, indexed = _app(crm2_settings)
    recorder = Recorder(app, indexed)
    raised, _, calls, _ = await _outcome(
        indexed, recorder, _scope("/api/v1/deals/deals", "PUT", app=app)
    )
    assert calls == []
    assert raised[0] == 405
    assert set(raised[1]["Allow"].split(", ")) == {"GET"}  # the first route with that path
    raised, sent, _, _ = await _outcome(indexed, recorder, _scope("/api/v1/auth/me/", app=app))
    assert raised is None
    assert sent[0]["status"] == 307
    assert (b"location", b"/api/v1/auth/me") in sent[0]["headers"]


@contextmanager
def _counted(indexed: IndexedRouter) -> Iterator[list[int]]:
    """Count every ``matches`` call on the app's routes (the pattern matches tried)."""
    count = [0]
    routes = list(_routes_of(indexed))
    for route in routes:
        original = route.matches

        def counting(scope: Scope, _original: Any = original) -> Any:
            count[0] += 1
            return _original(scope)

        route.matches = counting
    try:
        yield count
    finally:
        for route in routes:
            del route.matches


COUNTED = (  # method, path, most matches tried with the index
    ("GET", "/api/v1/auth/me", 1),
    ("GET", "/api/v1/plugins", 1),
    ("GET", "/api/v1/deals/deals", 1),
    ("POST", "/api/v1/deals/deals", 1),
    ("GET", "/api/v1/tasks/tasks", 1),
    ("PATCH", f"/api/v1/deals/deals/{uuid.UUID(int=1)}", 3),
    ("GET", "/api/v1/nope", 0),
)


async def test_a_request_tries_only_the_routes_its_path_can_match(
    crm2_settings: Settings,
) -> None:
    app, indexed = _app(crm2_settings)
    recorder = Recorder(app, indexed)
    for method, path, most in COUNTED:
        with _counted(indexed) as linear:
            await _outcome(indexed.linear, recorder, _scope(path, method, app=app))
        with _counted(indexed) as fast:
            await _outcome(indexed, recorder, _scope(path, method, app=app))
        assert fast[0] <= most < linear[0], (method, path, fast[0], linear[0])


# Run in a fresh interpreter: plugin routers (and so their routes, built or not) are
# module-level objects shared by every app of a process, built by earlier tests' requests.
_BUILDS_PROBE = """
import asyncio, json
import httpx
from fastapi import routing as fastapi_routing
from crm2_core.http.app import create_app

def unbuilt(app, prefix):
    def walk(router, at):
        for route in router.routes:
            if isinstance(route, fastapi_routing._IncludedRouter):
                yield from walk(route.original_router, at + route.include_context.prefix)
            elif (at + route.path).startswith(prefix) and "_crm2_declared" in route.__dict__:
                yield at + route.path
    return sorted(
        path
        for top in app.router.routes
        if isinstance(top, fastapi_routing._IncludedRouter)
        for path in walk(top.original_router, top.include_context.prefix)
    )

async def main():
    app = create_app()
    seen = {"start": [unbuilt(app, "/api/v1/deals/deals"), unbuilt(app, "/api/v1/tasks")]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm2.test") as client:
        seen["healthz"] = (await client.get("/healthz")).status_code
        seen["after healthz"] = [unbuilt(app, "/api/v1/deals/deals"), unbuilt(app, "/api/v1/tasks")]
        seen["deals"] = (await client.get("/api/v1/deals/deals")).status_code
        seen["after deals"] = [unbuilt(app, "/api/v1/deals/deals"), unbuilt(app, "/api/v1/tasks")]
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_a_request_builds_only_the_plugin_routers_its_path_reaches(tmp_path: Path) -> None:
    """Start-up to the first answer: the health check builds no plugin route, and a deals
    list builds the deals router's routes, not the tasks plugin's (FastAPI's loop would
    have built every router it tried before the one that matched)."""
    env = {
        **os.environ,
        "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}",
        "CRM2_JWT_SECRET": TEST_JWT_SECRET,
    }
    done = subprocess.run(
        [sys.executable, "-c", _BUILDS_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    deals, tasks = seen["start"]
    assert deals and tasks
    assert seen["healthz"] == 200 and seen["after healthz"] == [deals, tasks]
    assert seen["deals"] == 401 and seen["after deals"] == [[], tasks]


async def test_routes_added_after_the_first_request_are_indexed(crm2_settings: Settings) -> None:
    app, indexed = _app(crm2_settings)
    own = APIRouter(prefix="/api/v1/own")  # never a plugin's router: those are shared

    @own.get("/first")
    async def own_first() -> str:
        return "first"

    app.include_router(own)
    recorder = Recorder(app, indexed)
    await _outcome(indexed, recorder, _scope("/api/v1/auth/me", app=app))

    late = APIRouter(prefix="/api/v1/late")

    @late.get("/things/{thing_id}")
    async def thing(thing_id: int) -> int:
        return thing_id

    app.include_router(late)

    async def first(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("first")(scope, receive, send)

    app.router.routes.insert(0, Route("/api/v1/auth/me", first))  # before the real one
    app.mount("/static", PlainTextResponse("static"))
    app.router.routes.insert(1, Host("other.test", PlainTextResponse("other host")))

    @own.get("/second/{n}")
    async def own_second(n: int) -> int:
        return n

    nested = APIRouter()

    @nested.get("/nested")
    async def own_nested() -> str:
        return "nested"

    own.include_router(nested)  # an included router changed after its inclusion
    recorder = Recorder(app, indexed)
    for path in (
        "/api/v1/late/things/3",
        "/api/v1/late/things/x",
        "/api/v1/auth/me",
        "/api/v1/own/first",
        "/api/v1/own/second/2",
        "/api/v1/own/nested",
        "/api/v1/own/nested/",
        "/static/a",
        "/static",
    ):
        for method in ("GET", "POST"):
            await _same(app, indexed, recorder, _scope(path, method, app=app))
            await _same(app, indexed, recorder, _scope(path, method, host=b"other.test"))
    for path, endpoint in (
        ("/api/v1/auth/me", "top:0"),
        ("/api/v1/late/things/3", "route:"),
        ("/api/v1/own/second/2", "route:"),
        ("/api/v1/own/nested", "route:"),
        ("/static/a", "top:"),
    ):
        _, _, calls, _ = await _outcome(indexed, recorder, _scope(path, app=app))
        assert calls[0][0].startswith(endpoint), path


async def test_the_index_serves_the_real_app(crm2: Crm2TestApp) -> None:
    indexed = crm2.app.router.middleware_stack
    assert isinstance(indexed, IndexedRouter), unsupported_reason(crm2.app)
    headers = await crm2.login()
    with _counted(indexed) as count:
        me = await crm2.client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert count[0] == 1
    wrong = await crm2.client.put("/api/v1/auth/me", headers=headers)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    missing = await crm2.client.get("/api/v1/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_the_plain_router_serves_when_fastapis_routing_code_differs(
    crm2_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(route_index, "_DIGEST", "0" * 64)  # as after a FastAPI upgrade
    with caplog.at_level(logging.WARNING, logger=route_index.__name__):
        app = create_app(crm2_settings, plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}})
    assert app.router.middleware_stack == app.router.app
    assert "routing code differs" in caplog.text
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app.router(_scope("/api/v1/auth/me/"), receive, send)
    # FastAPI's own redirect would name the Host header's host: the plain router has none.
    assert sent[0]["status"] == 404


def test_the_digest_reads_each_replayed_function_as_inspect_getsource_does() -> None:
    # The digest is of the same text as inspect.getsource's, read without tokenizing:
    # _DIGEST, computed from getsource, keeps its meaning.
    for function in route_index._replayed():
        assert route_index._source(function) == inspect.getsource(function), function
    assert route_index.internals_digest() == route_index._DIGEST
