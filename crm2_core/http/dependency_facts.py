"""What FastAPI learns about a dependency, learned once instead of on every request.

FastAPI 0.165's ``solve_dependencies`` asks, for every dependency of every request,
facts that never change once the route is built: the dependency's cache key (its
callable, the OAuth scopes it uses, found by walking its sub-dependencies, and its
scope) and whether its callable is a generator, an async generator or a coroutine
function (each through a new ``_CallIdentity`` and an ``lru_cache`` look-up). On
``GET /api/v1/plugins`` that was a fifth of the request's CPU (py-spy, 2026-12-04).

``install()`` has the request path ask them once per dependant (or callable) and keep
the answer, keyed by identity and checked by identity, so an object that replaced one
at the same address is asked afresh. Dependants FastAPI builds per request (for
``dependency_overrides``, in tests) would pile up: the memo forgets everything when it
reaches its bound. The answers are FastAPI's own functions' answers.

The solver also writes ``cast(Callable[..., Any], sub_dependant.call)`` for every
sub-dependency of every request: ``collections.abc.Callable[..., Any]`` builds a new
alias each time (~0.8 µs), only to be ignored by ``cast``. ``install()`` gives that
module a ``Callable`` whose subscriptions are made once.
"""

from __future__ import annotations

import collections.abc
from collections.abc import Callable, Hashable
from typing import Any

from fastapi import routing
from fastapi.dependencies import models, utils
from fastapi.types import DependencyCacheKey

_BOUND = 8192
_installed = False

_cache_keys: dict[int, tuple[models.Dependant, DependencyCacheKey]] = {}


def _get_cache_key(
    *, dependant: models.Dependant, uses_scopes_cache: Any = None
) -> DependencyCacheKey:
    known = _cache_keys.get(id(dependant))
    if known is not None and known[0] is dependant and known[1][0] is dependant.call:
        return known[1]
    key = models._get_cache_key(dependant=dependant, uses_scopes_cache=uses_scopes_cache)
    if len(_cache_keys) >= _BOUND:
        _cache_keys.clear()
    _cache_keys[id(dependant)] = (dependant, key)
    return key


def _per_callable(ask: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``ask(call)``, answered once per callable object."""
    known: dict[int, tuple[Any, bool]] = {}

    def answer(call: Any) -> bool:
        found = known.get(id(call))
        if found is not None and found[0] is call:
            return found[1]
        result = ask(call)
        if len(known) >= _BOUND:
            known.clear()
        known[id(call)] = (call, result)
        return result

    return answer


class _SubscriptedOnce:
    """``origin`` whose subscriptions (``Callable[..., Any]``) are built once and kept."""

    def __init__(self, origin: Any) -> None:
        self._origin = origin
        self._made: dict[Hashable, Any] = {}

    def __getitem__(self, item: Any) -> Any:
        try:
            made = self._made.get(item)
        except TypeError:  # ``Callable[[int], str]``: a list is no key
            return self._origin[item]
        if made is None:
            made = self._made[item] = self._origin[item]
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._origin, name)


def install() -> None:
    """Answer the request path's questions from the memo (idempotent). The dependency
    solver asks all four; the request handler asks about the endpoint itself on every
    request."""
    global _installed
    if _installed:
        return
    _installed = True
    answers: dict[str, Callable[..., Any]] = {
        "_get_cache_key": _get_cache_key,
        "_is_gen_callable": _per_callable(models._is_gen_callable),
        "_is_async_gen_callable": _per_callable(models._is_async_gen_callable),
        "_is_coroutine_callable": _per_callable(models._is_coroutine_callable),
    }
    for module in (utils, routing):
        for name, answer in answers.items():
            if hasattr(module, name):
                setattr(module, name, answer)
    if getattr(utils, "Callable", None) is collections.abc.Callable:
        setattr(utils, "Callable", _SubscriptedOnce(collections.abc.Callable))  # noqa: B010
