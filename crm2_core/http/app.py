"""``create_app(settings)``: the one FastAPI application, assembled from plugins."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from crm2_core import __version__
from crm2_core.bootstrap import build_app_context
from crm2_core.context import AppContext
from crm2_core.errors import ConfigurationError
from crm2_core.http import dependency_facts
from crm2_core.http.docs import install_docs
from crm2_core.http.forwarded import ForwardedMiddleware
from crm2_core.http.idempotency import IdempotencyMiddleware
from crm2_core.http.middleware import BodyMiddleware, HeadMiddleware, RequestIdMiddleware
from crm2_core.http.openapi import decorate_openapi
from crm2_core.http.problems import install_problem_handlers
from crm2_core.http.ratelimit import RateLimitMiddleware, build_rate_limiter
from crm2_core.http.request_guard import guard_request
from crm2_core.http.route_index import install_route_index
from crm2_core.http.security import DEFAULT_HEADERS
from crm2_core.http.streamed import streamed_routes
from crm2_core.networks import parse_networks
from crm2_core.observability.middleware import ObservabilityMiddleware
from crm2_core.plugins import PluginRegistry
from crm2_core.plugins.manager import plugin_errors_reported
from crm2_core.settings import Settings, load_settings

log = logging.getLogger(__name__)
_PATH_PARAMETER = re.compile(r"\{[^}]*\}")

FASTAPI_TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def _mount(app: FastAPI, registry: PluginRegistry, context: AppContext) -> None:
    seen_operations: set[str] = set()
    served: dict[tuple[str, str], str] = {}
    mounted: list[APIRoute] = app.state.crm2_routes
    for plugin_name, router in registry.collect("crm2_routers", context=context):
        if not isinstance(router, APIRouter):
            raise ConfigurationError(
                f"{plugin_name}: crm2_routers returned {type(router).__name__}; "
                "return APIRouter objects"
            )
        if not registry.get(plugin_name).builtin:
            prefix = f"/api/v1/{plugin_name}"
            for route in router.routes:
                path = getattr(route, "path", "")
                if path != prefix and not path.startswith(prefix + "/"):
                    raise ConfigurationError(
                        f"{plugin_name} serves {path}, outside its prefix {prefix}: "
                        f"use APIRouter(prefix={prefix!r})"
                    )
        _check_collisions(plugin_name, router, served)
        _name_operations(router, seen_operations)
        # Every plugin route inherits the request guard: unknown query parameters,
        # NUL in query and path values, a non-JSON body where JSON is read.
        app.include_router(router, dependencies=[Depends(guard_request)])
        mounted.extend(r for r in router.routes if isinstance(r, APIRoute))


class Crm2App(FastAPI):
    """FastAPI with the request-id and security-header middleware outside Starlette's
    ``ServerErrorMiddleware``.

    ``add_middleware`` always lands inside it, so a 500 rendered there would go
    out without the ``X-Request-ID`` the client needs to report it (or the headers).
    """

    def build_middleware_stack(self) -> ASGIApp:
        # Observability (log fields, metrics, the request's span) outside it too, for the
        # same reason: a 500 is counted and logged with its id. The security headers are
        # added by the request-id layer's wrapper (one wrapper for both).
        inner: ASGIApp = ObservabilityMiddleware(
            super().build_middleware_stack(), self.state.context
        )
        networks = parse_networks(self.state.context.settings.trusted_proxies)
        if networks:  # without a trusted proxy the layer would only pass every request on
            inner = ForwardedMiddleware(inner, networks)
        return RequestIdMiddleware(inner, extra_headers=DEFAULT_HEADERS)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, plus what the core adds to every route (``http/openapi.py``)."""
        if self.openapi_schema is None:
            document = super().openapi()
            decorate_openapi(document, self.state.crm2_routes)
            self.openapi_schema = document
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    *,
    extra_plugins: tuple[object, ...] = (),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
    context: AppContext | None = None,
) -> FastAPI:
    """Build the application; raises ``ConfigurationError`` naming the fix when it cannot."""
    if context is None:
        context = build_app_context(
            settings or load_settings(),
            extra_plugins=extra_plugins,
            plugin_settings=plugin_settings,
        )
    registry = context.plugins
    dependency_facts.install()

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        try:
            # The events plugin starts the bus and the scheduler after every other
            # plugin's startup, and stops them before the others' shutdowns.
            with plugin_errors_reported(registry):
                await registry.acall("crm2_startup", context=context)
            if getattr(running.state, "freeze_gc", False):
                # Everything built so far (routes, models, plugins) lives as long as the
                # process: keep it out of the cyclic GC's full collections, which would
                # rescan it all and stall requests. Only for a serving process: a test
                # process builds many apps, and frozen cycles are never collected.
                gc.freeze()
                gc.enable()  # `crm2 serve` starts with it paused (crm2_core.cli.main.main)
            yield
        finally:
            await registry.acall("crm2_shutdown", reverse=True, context=context)
            await context.aclose()

    app = Crm2App(
        title="crm2",
        version=__version__,
        summary="A plugin-based CRM. Errors are RFC 9457 application/problem+json.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # crm2 traces, counts and logs its requests itself (crm2_core.observability,
        # CRM2_TRACING_*): FastAPI's own telemetry would only add a second span per
        # request under a global provider, and its check costs every request.
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    app.state.context = context
    app.state.crm2_routes = []
    install_problem_handlers(app)
    install_docs(app)
    with plugin_errors_reported(registry):
        _mount(app, registry, context)
        _install_web_root(app, registry, context)
    # Each request tries only the routes its path can match (routes added later count too).
    install_route_index(app)
    # Outermost first: request id (see Crm2App), the rate limit, the bounded body read,
    # then idempotency; innermost, HEAD routed as GET.
    app.add_middleware(HeadMiddleware)
    app.add_middleware(IdempotencyMiddleware, context=context)
    app.add_middleware(
        BodyMiddleware,
        max_body_bytes=context.settings.max_body_bytes,
        max_upload_bytes=context.settings.max_upload_bytes,
        streamed=streamed_routes(app.state.crm2_routes),
    )
    limiter = build_rate_limiter(context.settings, context.redis)
    if limiter is not None:
        app.add_middleware(RateLimitMiddleware, limiter=limiter, context=context)
    return app


def _install_web_root(app: FastAPI, registry: PluginRegistry, context: AppContext) -> None:
    """Hand requests no route matched, outside ``/api/``, to the ``crm2_web_root`` app.

    Starlette's router calls ``default`` only after every route failed to match
    (a path matched with another method is a 405 before that), so the site can
    never shadow an API route; ``/api/…`` keeps the core's problem+json 404.
    """
    answer = registry.first_answer("crm2_web_root", context=context)
    if answer is None:
        return
    plugin_name, site = answer
    if not callable(site):
        raise ConfigurationError(
            f"{plugin_name}: crm2_web_root returned {type(site).__name__}, which is not an "
            "ASGI application: return one (an async callable taking scope, receive and "
            "send, such as a Starlette app) or None"
        )
    api_default = app.router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path == "/api" or path.startswith("/api/"):
            await api_default(scope, receive, send)
        else:
            await site(scope, receive, send)

    app.router.default = default


def _check_collisions(
    plugin_name: str, router: APIRouter, served: dict[tuple[str, str], str]
) -> None:
    """Refuse a method and path that a route mounted before serves already.

    Starlette would answer every such request with the first route and never
    reach this one, without a word. Parameter names do not count: ``/{id}``
    and ``/{item_id}`` are one path.
    """
    for route in router.routes:
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if not isinstance(path, str) or not methods:
            continue
        shape = _PATH_PARAMETER.sub("{}", path)
        for method in sorted(methods):
            owner = served.get((method, shape))
            if owner is not None:
                raise ConfigurationError(
                    f"{plugin_name} serves {method} {path}, which {owner} serves already: "
                    f"requests would only ever reach {owner}'s route; give one of them "
                    "another path (a plugin's routes live under /api/v1/<its name>)"
                )
            served[(method, shape)] = plugin_name


def _name_operations(router: APIRouter, seen: set[str]) -> None:
    """Short, stable operationIds (``auth_login``) for generated frontend clients."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.operation_id is None:
            tag = str(route.tags[0]) if route.tags else "core"
            operation_id = f"{tag}_{route.name}"
            while operation_id in seen:
                operation_id += "_"
            seen.add(operation_id)
            route.operation_id = operation_id
