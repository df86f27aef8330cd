"""Which routes can match a path: an index on the static leading segments of route paths.

Starlette compiles ``/api/v1/deals/deals/{deal_id}`` to
``^/api/v1/deals/deals/(?P<deal_id>[^/]+)$``: a path it matches starts with the segments
``api``, ``v1``, ``deals``, ``deals``. The index is a trie of those literal segments; a
request walks it as far as its own segments go, and the routes filed at the nodes it
passed are the only ones whose pattern can match. They come back in their original
order, split by what the request's method can give:

- ``full``: routes that may match completely (no method list, or one naming the method);
- ``partial_only``: routes whose method list leaves the method out, which can only be a
  partial match (Starlette's 405 with ``Allow``), tried when no route matched completely.

An entry without known segments (a ``Host``, a route class with its own ``matches``, a
pattern that is not the one ``compile_path`` makes of the path) is filed at the root: a
candidate for every request, in its place in the order. A path ending in a newline (which
``$`` matches before) gets every entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from re import Pattern
from typing import Generic, TypeVar

from starlette.routing import Match, compile_path
from starlette.types import Scope

T = TypeVar("T")

HTTP = "http"
WEBSOCKET = "websocket"
ANY_SCOPE: frozenset[str] = frozenset({HTTP, WEBSOCKET})

Evaluate = Callable[[T, Scope], tuple[Match, Scope]]


def static_segments(path: str, pattern: Pattern[str]) -> tuple[str, ...] | None:
    """The literal segments every path ``pattern`` matches starts with, or ``None``.

    ``None`` unless ``pattern`` is exactly what ``compile_path(path)`` makes: only then is
    the literal text before the first ``{`` a prefix every match starts with.
    """
    if not path.startswith("/"):
        return None
    compiled = compile_path(path)[0]
    if compiled.pattern != pattern.pattern or compiled.flags != pattern.flags:
        return None
    literal, brace, _ = path.partition("{")
    segments = literal[1:].split("/")
    if brace:
        segments.pop()  # the text between the last "/" and the "{": only part of a segment
    return tuple(segments)


@dataclass(frozen=True, eq=False)
class Entry(Generic[T]):
    """One route in the index: its place in the order and what it can match."""

    order: int
    payload: T
    segments: tuple[str, ...] | None = None  # None: a candidate for every path
    scope_types: frozenset[str] = ANY_SCOPE
    methods: frozenset[str] | None = None  # None or empty: any method matches completely


@dataclass(frozen=True)
class Candidates(Generic[T]):
    full: tuple[Entry[T], ...]
    partial_only: tuple[Entry[T], ...]

    @property
    def every(self) -> tuple[Entry[T], ...]:
        return tuple(sorted(self.full + self.partial_only, key=lambda entry: entry.order))


@dataclass(eq=False)
class _Node(Generic[T]):
    entries: list[Entry[T]] = field(default_factory=list)  # its own and its ancestors'
    children: dict[str, _Node[T]] = field(default_factory=dict)
    split: dict[tuple[str, str | None], Candidates[T]] = field(default_factory=dict)


class PathIndex(Generic[T]):
    """Candidates for a route path, scope type and method, in the original order."""

    def __init__(self, entries: Iterable[Entry[T]]) -> None:
        ordered = sorted(entries, key=lambda entry: entry.order)
        self.entries: tuple[Entry[T], ...] = tuple(ordered)
        self._methods = frozenset(m for e in ordered if e.methods for m in e.methods)
        self._root: _Node[T] = _Node()
        self._everything: _Node[T] = _Node(entries=list(ordered))
        filed: dict[tuple[str, ...], list[Entry[T]]] = {}
        for entry in ordered:
            filed.setdefault(entry.segments or (), []).append(entry)
        for segments in sorted(filed, key=len):  # parents before children
            node = self._root
            for segment in segments:
                node = node.children.setdefault(segment, _Node(entries=list(node.entries)))
            self._add(node, filed[segments])

    def _add(self, node: _Node[T], entries: list[Entry[T]]) -> None:
        # Entries filed here are candidates in this node and every node below it.
        node.entries = sorted(node.entries + entries, key=lambda entry: entry.order)
        for child in node.children.values():
            self._add(child, entries)

    def candidates(self, route_path: str, scope_type: str, method: str | None) -> Candidates[T]:
        node = self._node(route_path)
        key = (scope_type, method if method in self._methods else None)
        found = node.split.get(key)
        if found is None:
            found = node.split[key] = self._split(node.entries, *key)
        return found

    def _node(self, route_path: str) -> _Node[T]:
        if route_path.endswith("\n"):
            return self._everything
        node = self._root
        if route_path.startswith("/"):
            for segment in route_path[1:].split("/"):
                child = node.children.get(segment)
                if child is None:
                    break
                node = child
        return node

    @staticmethod
    def _split(entries: list[Entry[T]], scope_type: str, method: str | None) -> Candidates[T]:
        full: list[Entry[T]] = []
        partial_only: list[Entry[T]] = []
        for entry in entries:
            if scope_type not in entry.scope_types:
                continue
            if scope_type != HTTP or not entry.methods or method in entry.methods:
                full.append(entry)
            else:
                partial_only.append(entry)
        return Candidates(tuple(full), tuple(partial_only))


def select(
    candidates: Candidates[T], evaluate: Evaluate[T], scope: Scope
) -> tuple[Match, Entry[T] | None, Scope]:
    """What Starlette's loop over every route decides, trying only ``candidates``.

    The first complete match wins; without one, the first partial match in the order.
    ``evaluate(payload, scope)`` is the route's ``matches(scope)``.
    """
    partial: tuple[Entry[T], Scope] | None = None
    for entry in candidates.full:
        match, child_scope = evaluate(entry.payload, scope)
        if match is Match.FULL:
            return match, entry, child_scope
        if match is Match.PARTIAL and partial is None:
            partial = (entry, child_scope)
    before = partial[0].order if partial is not None else None
    for entry in candidates.partial_only:
        if before is not None and entry.order > before:
            break
        match, child_scope = evaluate(entry.payload, scope)
        if match is not Match.NONE:
            return match, entry, child_scope
    if partial is not None:
        return Match.PARTIAL, partial[0], partial[1]
    return Match.NONE, None, {}
