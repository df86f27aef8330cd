"""``install_route_index(app)``: the app's router tries only the routes that can match.

FastAPI's ``APIRouter.app`` tries every route of the app in order, and each plugin router
(an ``_IncludedRouter``) tries every route it holds, twice for the one it serves: a request
to a late route costs a pattern match per route of every enabled plugin. ``IndexedRouter``
makes the same decision from the few candidates ``PathIndex`` gives for the path and method,
then hands the request on exactly as ``APIRouter.app`` and ``_IncludedRouter._handle_selected``
would: the same scope (``route``, ``endpoint``, ``path_params``, FastAPI's ``fastapi`` keys),
the same 405 with its ``Allow``, the same slash redirect (its ``Location`` relative and as
sent: ``slash_redirect.py``), low-priority routes and default.

That replays FastAPI internals (0.165): the index is installed only when the routing code
it replays is byte for byte the code it was written against (``_DIGEST``); otherwise, or
when a request arrives with FastAPI's scope keys already set (a router inside another), the
plain router serves. Routes added later (``include_router``, ``add_api_route``, ``mount``,
a direct change of ``app.router.routes``) rebuild the index on the next request.
"""

from __future__ import annotations

import hashlib
import linecache
import logging
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from types import CodeType
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.telemetry._api import _route_selected
from starlette import routing as starlette_routing
from starlette._utils import get_route_path
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from crm2_core.http.path_index import (
    ANY_SCOPE,
    HTTP,
    WEBSOCKET,
    Candidates,
    Entry,
    PathIndex,
    select,
    static_segments,
)
from crm2_core.http.slash_redirect import slash_redirect_location

log = logging.getLogger(__name__)

# sha256 of the source of every function below (``_replayed``) in FastAPI 0.165.0 and
# Starlette 1.10.0. A new version that changes one of them turns the index off (a warning
# at start-up, and tests/http/test_route_index.py fails) until it is checked again.
_DIGEST = "af0deb2a0fa9f2b32abe15455d90116bb3776c92a1d59363b451b344fce0e8c4"

_version = attrgetter("_routes_version")


def _replayed() -> list[Any]:
    f, s = fastapi_routing, starlette_routing
    return [
        s.compile_path,
        get_route_path,
        s.Route.matches,
        s.WebSocketRoute.matches,
        s.Mount.matches,
        s.Router.__call__,
        f.APIRoute.matches,
        f.APIWebSocketRoute.matches,
        f.APIRouter.app,
        f.APIRouter.matches,
        f.APIRouter.handle,
        f.APIRouter._mark_routes_changed,
        f.APIRouter._get_routes_version,
        f._IncludedRouter.matches,
        f._IncludedRouter.handle,
        f._IncludedRouter._match,
        f._IncludedRouter._handle_selected,
        f._EffectiveRouteContext.matches,
        f._update_scope,
        f._get_fastapi_scope,
        f._apply_router_form_limits,
        f._restore_fastapi_scope_key,
        f._get_scope_effective_route_context,
    ]


def _last_line(code: CodeType) -> int:
    """The last line any of ``code``'s instructions (its nested functions' too) is on."""
    ends = (end for _, end, _, _ in code.co_positions() if end is not None)
    last = max(ends, default=code.co_firstlineno)
    for inner in code.co_consts:
        if isinstance(inner, CodeType):
            last = max(last, _last_line(inner))
    return last


def _source(function: Any) -> str:
    """The lines ``function`` spans in its file, decorators included: ``inspect.getsource``'s
    text for each replayed function, read without tokenizing it (which cost ~10 ms of CPU
    at every start for these 23 functions)."""
    code: CodeType = function.__code__
    lines = linecache.getlines(code.co_filename)
    return "".join(lines[code.co_firstlineno - 1 : _last_line(code)])


@cache
def internals_digest() -> str | None:
    """The digest of the installed routing code the index replays; ``None`` if unreadable."""
    try:
        sources = [_source(function) for function in _replayed()]
    except (AttributeError, OSError, TypeError):
        return None
    if not all(sources):
        return None
    return hashlib.sha256("\n".join(sources).encode()).hexdigest()


def unsupported_reason(app: FastAPI) -> str | None:
    """Why the index cannot serve ``app`` (``None``: it can)."""
    digest = internals_digest()
    if digest is None:
        return "FastAPI's routing internals are missing or their source is unreadable"
    if digest != _DIGEST:
        return f"FastAPI/Starlette routing code differs from the one replayed (digest {digest})"
    router = app.router
    if type(router) is not fastapi_routing.APIRouter:
        return f"the app's router is a {type(router).__name__}, not FastAPI's APIRouter"
    if router.middleware_stack != router.app:
        return "the app's router has middleware of its own"
    return None


@dataclass(frozen=True, eq=False)
class _Leaf:
    """A route the request may be handed to, and the app router's route that holds it."""

    top: BaseRoute
    top_order: int
    chain: tuple[Any, ...]  # the _IncludedRouter branches from ``top`` down; () for ``top`` itself
    candidate: Any  # ``top`` itself, or an _EffectiveRouteContext of the last branch


_KNOWN_MATCHES: dict[Any, frozenset[str]] = {
    starlette_routing.Route.matches: frozenset({HTTP}),
    fastapi_routing.APIRoute.matches: frozenset({HTTP}),
    starlette_routing.WebSocketRoute.matches: frozenset({WEBSOCKET}),
    fastapi_routing.APIWebSocketRoute.matches: frozenset({WEBSOCKET}),
    starlette_routing.Mount.matches: ANY_SCOPE,
}


def _route_entry(order: int, leaf: _Leaf, route: Any) -> Entry[_Leaf]:
    """File a Starlette/FastAPI route under its path, when its matching is the known one."""
    scope_types = _KNOWN_MATCHES.get(type(route).matches)
    if scope_types is None:
        return Entry(order, leaf)
    path = route.path + "/{path:path}" if isinstance(route, Mount) else route.path
    segments = static_segments(path, route.path_regex)
    methods = getattr(route, "methods", None)
    return Entry(order, leaf, segments, scope_types, frozenset(methods) if methods else None)


def _context_entry(order: int, leaf: _Leaf) -> Entry[_Leaf]:
    context = leaf.candidate
    if isinstance(context.original_route, fastapi_routing.APIRoute):
        methods = frozenset(context.methods) if context.methods else None
        segments = static_segments(context.path, context.path_regex)
        return Entry(order, leaf, segments, frozenset({HTTP}), methods)
    if context.starlette_route is not None:
        return _route_entry(order, leaf, context.starlette_route)
    return Entry(order, leaf)


def _standard_branch(branch: Any) -> bool:
    """Does the included router match and hand on exactly as FastAPI's own code does?"""
    router = branch.original_router
    return (
        type(branch) is fastapi_routing._IncludedRouter
        and type(router).matches is fastapi_routing.APIRouter.matches
        and type(router).handle is fastapi_routing.APIRouter.handle
    )


def _flatten(chain: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], Any]] | None:
    """Every (branch chain, effective route context) under ``chain[-1]``; None if opaque."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    for candidate in chain[-1].effective_candidates():
        if isinstance(candidate, fastapi_routing._IncludedRouter):
            if not _standard_branch(candidate):
                return None
            inner = _flatten((*chain, candidate))
            if inner is None:
                return None
            found.extend(inner)
            continue
        if type(candidate).matches is not fastapi_routing._EffectiveRouteContext.matches:
            return None
        original = candidate.original_route
        if isinstance(original, fastapi_routing.APIRoute) and (
            type(original).matches is not fastapi_routing.APIRoute.matches
        ):
            return None
        found.append((chain, candidate))
    return found


# Orders of the leaves under one top-level route: top_order * _ORDER_BLOCK + their own.
_ORDER_BLOCK = 1 << 20


def _literal_segments(path: str) -> tuple[str, ...] | None:
    """The literal leading segments of a route path (as ``static_segments`` files it)."""
    if not path.startswith("/"):
        return None
    literal, brace, _ = path.partition("{")
    segments = literal[1:].split("/")
    if brace:
        segments.pop()
    return tuple(segments)


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _reach(router: Any, prefix: str) -> tuple[str, ...] | None:
    """The literal segments every path an included router's routes can match starts with,
    read from their declared paths (building nothing); ``None``: any path."""
    common: tuple[str, ...] | None = None
    for route in router.routes:
        if isinstance(route, fastapi_routing._IncludedRouter):
            if not _standard_branch(route):
                return None
            segments = _reach(route.original_router, prefix + route.include_context.prefix)
        elif type(route).matches in _KNOWN_MATCHES:
            path = prefix + route.path
            # as FastAPI copies a mount into an included router, then as _route_entry files it
            path = path.rstrip("/") + "/{path:path}" if isinstance(route, Mount) else path
            segments = _literal_segments(path)
        else:
            return None
        if segments is None:
            return None
        common = segments if common is None else _common(common, segments)
    return common if common is not None else ()


class _Branch:
    """A plugin router (a top-level ``_IncludedRouter``), filed under the segments all its
    paths start with; its routes are built and indexed when a request first reaches them.

    Flattening a router builds every route it holds (FastAPI's effective routes: each
    route's dependant, fields and handler): done for every router at once, the first
    request would build every plugin's routes (about 0.5 s of CPU with every plugin).
    """

    def __init__(self, top: Any, top_order: int) -> None:
        self.top = top
        self.top_order = top_order
        self.segments = _reach(top.original_router, top.include_context.prefix)
        self._index: PathIndex[_Leaf] | None = None

    def index(self) -> PathIndex[_Leaf]:
        if self._index is None:
            base, top, top_order = self.top_order * _ORDER_BLOCK, self.top, self.top_order
            leaves = _flatten((top,))
            if leaves is None:
                entries = [_route_entry(base, _Leaf(top, top_order, (), top), top)]
            else:
                entries = [
                    _context_entry(base + n, _Leaf(top, top_order, chain, context))
                    for n, (chain, context) in enumerate(leaves)
                ]
            self._index = PathIndex(entries)
        return self._index


class _Built:
    """The index of one state of the routes, and what tells that state apart."""

    def __init__(self, router: Any) -> None:
        self.routes: list[BaseRoute] = list(router.routes)
        self.router: fastapi_routing.APIRouter = router
        self.routers: list[Any] = [router]
        entries: list[Entry[Any]] = []
        self.first_included: int | None = None
        for top_order, top in enumerate(self.routes):
            order = top_order * _ORDER_BLOCK
            if isinstance(top, fastapi_routing._IncludedRouter):
                if self.first_included is None:
                    self.first_included = top_order
                self._collect_routers(top)
                if _standard_branch(top):
                    branch = _Branch(top, top_order)
                    entries.append(Entry(order, branch, branch.segments))
                    continue
            entries.append(_route_entry(order, _Leaf(top, top_order, (), top), top))
        self.index: PathIndex[_Leaf | _Branch] = PathIndex(entries)
        self.version = sum(map(_version, self.routers))
        self.low_priority = any(True for _ in router._iter_low_priority_routes())

    def candidates(self, route_path: str, scope_type: str, method: str | None) -> Candidates[_Leaf]:
        """The routes that can match, in their order: the plugin routers the path reaches
        expanded into their own candidates."""
        top = self.index.candidates(route_path, scope_type, method)
        if not any(isinstance(entry.payload, _Branch) for entry in top.full):
            return top  # type: ignore[return-value]  # no branch: every payload is a _Leaf
        full: list[Entry[_Leaf]] = []
        partial_only: list[Entry[_Leaf]] = list(top.partial_only)  # type: ignore[arg-type]
        for entry in top.full:
            payload = entry.payload
            if isinstance(payload, _Branch):
                inner = payload.index().candidates(route_path, scope_type, method)
                full.extend(inner.full)
                partial_only.extend(inner.partial_only)
            else:
                full.append(entry)  # type: ignore[arg-type]
        by_order = attrgetter("order")
        return Candidates(
            tuple(sorted(full, key=by_order)), tuple(sorted(partial_only, key=by_order))
        )

    @property
    def entries(self) -> list[Entry[_Leaf]]:
        """Every route's entry, each plugin router expanded (building its routes)."""
        found: list[Entry[_Leaf]] = []
        for entry in self.index.entries:
            payload = entry.payload
            if isinstance(payload, _Branch):
                found.extend(payload.index().entries)
            else:
                found.append(entry)  # type: ignore[arg-type]
        return found

    def _collect_routers(self, branch: Any) -> None:
        self.routers.append(branch.original_router)
        for route in branch.original_router.routes:
            if isinstance(route, fastapi_routing._IncludedRouter):
                self._collect_routers(route)

    def current(self) -> bool:
        version: int = sum(map(_version, self.routers))
        return version == self.version and self.router.routes == self.routes


class IndexedRouter:
    """The app router's ``middleware_stack``: ``APIRouter.app`` over the indexed candidates."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.linear: ASGIApp = router.app
        self._built: _Built | None = None

    def built(self) -> _Built:
        built = self._built
        if built is None or not built.current():
            built = self._built = _Built(self.router)
        return built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type not in (HTTP, WEBSOCKET) or fastapi_routing._FASTAPI_SCOPE_KEY in scope:
            await self.linear(scope, receive, send)
            return
        router = self.router
        built = self.built()
        fastapi_routing._apply_router_form_limits(scope, router.form_limits)
        if "router" not in scope:
            scope["router"] = router

        route_path = get_route_path(scope)
        method = scope.get("method") if scope_type == HTTP else None
        candidates = built.candidates(route_path, scope_type, method)
        match, entry, child_scope = select(candidates, _evaluate, scope)
        if entry is not None:
            leaf = entry.payload
            # A partial match means the plain loop tried every route.
            self._touch_fastapi_scope(scope, built, leaf.top_order if match is Match.FULL else None)
            await _hand_on(scope, receive, send, leaf, child_scope)
            return
        self._touch_fastapi_scope(scope, built, None)

        if scope_type == HTTP and router.redirect_slashes and route_path != "/":
            redirect_scope = dict(scope)
            if route_path.endswith("/"):
                redirect_scope["path"] = redirect_scope["path"].rstrip("/")
            else:
                redirect_scope["path"] = redirect_scope["path"] + "/"
            redirect_path = get_route_path(redirect_scope)
            for found in built.candidates(redirect_path, HTTP, None).every:
                if _evaluate(found.payload, redirect_scope)[0] is not Match.NONE:
                    if scope.get("fastapi.telemetry") is not None:
                        _telemetry_route(scope, redirect_scope, found.payload.top)
                    # Relative, as sent: never Starlette's URL(scope=…) from the Host header.
                    location = slash_redirect_location(scope, redirect_scope["path"])
                    response = RedirectResponse(url=location)
                    await response(scope, receive, send)
                    return

        if built.low_priority:
            # Rare (FastAPI's ``frontend()``): FastAPI's own code from here on.
            await self.linear_tail(scope, receive, send)
            return
        await router.default(scope, receive, send)

    @staticmethod
    def _touch_fastapi_scope(scope: Scope, built: _Built, top_order: int | None) -> None:
        # The plain loop creates scope["fastapi"] when it tries an included router: keep
        # the scope the same whether the index skipped them or not.
        first = built.first_included
        if first is not None and (top_order is None or first < top_order):
            fastapi_routing._get_fastapi_scope(scope)

    async def linear_tail(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self.router
        low_match, low_scope, low_route, low_context = router._match_low_priority(scope)
        if low_match != Match.NONE and low_route is not None:
            fastapi_routing._update_scope(scope, low_scope)
            _route_selected(
                scope=scope,
                path=getattr(low_context or low_route, "path_format", None),
            )
            if low_context is not None:
                fastapi_scope = fastapi_routing._get_fastapi_scope(scope)
                fastapi_scope[fastapi_routing._FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = low_context
                original_route = low_context.original_route
                if isinstance(original_route, fastapi_routing.APIRoute):
                    scope["route"] = original_route
                    await original_route.handle(scope, receive, send)
                    return
                assert low_context.app is not None
                await low_context.app(scope, receive, send)
            else:
                await low_route.handle(scope, receive, send)
            return
        await router.default(scope, receive, send)


def _evaluate(leaf: _Leaf, scope: Scope) -> tuple[Match, Scope]:
    """The route's ``matches(scope)``, called as the loop that holds it calls it."""
    if not leaf.chain:
        return leaf.top.matches(scope)
    f = fastapi_routing
    context = leaf.candidate
    original = context.original_route
    if not isinstance(original, f.APIRoute):
        return context.matches(scope)  # type: ignore[no-any-return]
    # _IncludedRouter._match: the route matches with its effective context in the scope.
    key = f._FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY
    fastapi_scope = f._get_fastapi_scope(scope)
    previous = fastapi_scope.get(key, f._SCOPE_MISSING)
    fastapi_scope[key] = context
    try:
        return original.matches(scope)
    finally:
        f._restore_fastapi_scope_key(scope, key, previous)


async def _hand_on(
    scope: Scope, receive: Receive, send: Send, leaf: _Leaf, child_scope: Scope
) -> None:
    """What ``APIRouter.app`` and each ``_IncludedRouter`` do once the route is chosen."""
    f = fastapi_routing
    if not leaf.chain:
        route = leaf.top
        f._update_scope(scope, child_scope)
        _route_selected(
            scope=scope, path=getattr(route, "path_format", None), mount=isinstance(route, Mount)
        )
        await route.handle(scope, receive, send)
        return
    fastapi_scope = f._get_fastapi_scope(scope)
    for branch in leaf.chain:  # each branch's handle(), down to the one holding the route
        f._apply_router_form_limits(scope, branch.include_context.form_limits)
        fastapi_scope[f._FASTAPI_INCLUDED_ROUTER_KEY] = branch
    context = leaf.candidate
    original = context.original_route
    route = original if isinstance(original, f.APIRoute) else context.starlette_route or original
    f._update_scope(scope, child_scope)
    _route_selected(
        scope=scope,
        path=getattr(context.starlette_route, "path_format", None) or context.path_format,
        mount=isinstance(route, Mount),
    )
    f._get_fastapi_scope(scope)[f._FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = context
    if isinstance(original, f.APIRoute):
        scope["route"] = original
        await original.handle(scope, receive, send)
        return
    handle = wrap_app_with_body_limit(route.handle, leaf.chain[-1].include_context.max_body_size)
    await handle(scope, receive, send)


def _telemetry_route(scope: Scope, redirect_scope: Scope, route: Any) -> None:
    f = fastapi_routing
    telemetry_route = route
    while isinstance(telemetry_route, f._IncludedRouter):
        _, _, matched_route, matched_context = telemetry_route._match(redirect_scope)
        telemetry_route = (
            matched_context.starlette_route or matched_context
            if matched_context is not None
            else matched_route
        )
    _route_selected(scope=scope, path=getattr(telemetry_route, "path_format", None))


def install_route_index(app: FastAPI) -> IndexedRouter | None:
    """Route ``app``'s requests through an ``IndexedRouter``; ``None`` when it cannot."""
    reason = unsupported_reason(app)
    if reason is not None:
        # FastAPI's own slash redirect would name the Host header's host: none at all.
        app.router.redirect_slashes = False
        log.warning(
            "route index off, every route is tried in order and a path with a stray "
            "trailing slash is a 404, not a redirect: %s",
            reason,
        )
        return None
    indexed = IndexedRouter(app.router)
    app.router.middleware_stack = indexed
    return indexed
