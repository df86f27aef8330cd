"""The plugin manager: built by a function, never at import."""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pluggy
from pydantic import ValidationError

from crm2_core import __version__
from crm2_core.errors import ConfigurationError
from crm2_core.plugins.discovery import InstalledPlugin, discover_builtin, discover_installed
from crm2_core.plugins.hookcheck import check_arguments, check_markers, check_pending, known_hooks
from crm2_core.plugins.resolve import check_core_version, dependency_order, select_enabled
from crm2_core.settings import Settings, settings_problems
from crm2_hookspecs import PROJECT_NAME, Crm2Spec


@dataclass(frozen=True)
class PluginStatus:
    """One row of ``crm2 plugins list`` and ``GET /api/v1/plugins``."""

    name: str
    title: str
    version: str
    enabled: bool
    builtin: bool
    depends: tuple[str, ...]
    status: str


class PluginRegistry:
    """The enabled plugins in dependency order, their settings, and hook calls in that order."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        installed: dict[str, InstalledPlugin],
        ordered: list[InstalledPlugin],
        plugin_settings: dict[str, Any],
    ) -> None:
        self.pm = pm
        self.installed = installed
        self.ordered = ordered
        self._settings = plugin_settings
        self._index = {p.name: i for i, p in enumerate(ordered)}

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.ordered]

    def is_enabled(self, name: str) -> bool:
        return name in self._index

    def get(self, name: str) -> InstalledPlugin:
        return self.ordered[self._index[name]]

    def settings_for(self, name: str) -> Any:
        if name not in self._settings:
            raise KeyError(f"plugin {name!r} is not enabled or has no settings")
        return self._settings[name]

    def call(
        self, hook_name: str, *, reverse: bool = False, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Call a hook through pluggy; return ``(plugin name, result)`` for non-None results.

        The one calling path: pluggy runs hook wrappers and honours ``tryfirst`` /
        ``trylast``; among the others, dependencies come first (they are registered
        last). ``reverse`` runs those others in reverse dependency order (shutdown);
        wrappers and the ``tryfirst`` / ``trylast`` groups keep their places.
        """
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        if caller.spec is not None and caller.spec.opts.get("firstresult"):
            raise TypeError(f"{hook_name} is a firstresult hook: use PluginRegistry.first()")
        produced: list[tuple[str, Any]] = []
        token = _PRODUCERS.set(produced)
        try:
            if reverse:
                impls = _reverse_order(caller.get_hookimpls())
                # ``_hookexec`` is what ``HookCaller.__call__`` runs (tracing and
                # monitoring included): the same path, with the plugins' order turned.
                results = cast(list[Any], caller._hookexec(hook_name, impls, kwargs, False))
            else:
                results = cast(list[Any], caller(**kwargs))
        except BaseException:
            # a plugin raised: the earlier ones' coroutines will never be awaited
            _close_coroutines(result for _name, result in produced)
            raise
        finally:
            _PRODUCERS.reset(token)
        producers = [name for name, _result in produced]
        if len(results) != len(producers):
            raise RuntimeError(
                f"a hook wrapper of {hook_name} added or removed results; wrappers may only "
                "change results in place, so that each result keeps its plugin"
            )
        return list(zip(producers, results, strict=True))

    def first(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook through pluggy: the first non-None result, or None."""
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        return caller(**kwargs)

    def first_answer(self, hook_name: str, **kwargs: Any) -> tuple[str, Any] | None:
        """``first()`` with the plugin that answered: ``(plugin name, result)``, or None."""
        produced: list[tuple[str, Any]] = []
        token = _PRODUCERS.set(produced)
        try:
            result = self.first(hook_name, **kwargs)
        finally:
            _PRODUCERS.reset(token)
        if result is None:
            return None
        return (produced[-1][0] if produced else "a hook wrapper", result)

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Flatten list-returning registration hooks into ``(plugin name, item)`` pairs."""
        pairs: list[tuple[str, Any]] = []
        for name, items in self.call(hook_name, **kwargs):
            if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
                # ``return router`` for ``return [router]``: iterating it would fail (or
                # go through its characters or keys) far from the plugin
                raise ConfigurationError(
                    f"{name}: {hook_name} returned a single {type(items).__name__}, "
                    "not a list: return a list of them"
                )
            pairs.extend((name, item) for item in items)
        return pairs

    async def acall(self, hook_name: str, *, reverse: bool = False, **kwargs: Any) -> None:
        """Call a lifecycle hook, then await the awaitables in the order they were returned.

        Each plugin's awaitable finishes before the next plugin's starts, so a
        plugin's startup sees its dependencies started.
        """
        results = self.call(hook_name, reverse=reverse, **kwargs)
        awaitables = [r for _name, r in results]
        for done, (plugin_name, result) in enumerate(results):
            if not inspect.isawaitable(result):
                continue
            try:
                await result
            except BaseException as exc:
                _close_coroutines(awaitables[done + 1 :])  # the later plugins' never run
                if isinstance(exc, Exception):
                    _blame(exc, plugin_name, hook_name)
                raise

    def statuses(self) -> list[PluginStatus]:
        rows = []
        for name in sorted(self.installed, key=lambda n: (n not in self._index, n)):
            plugin = self.installed[name]
            manifest = plugin.manifest
            enabled = name in self._index
            status = "error: " + plugin.error if plugin.error else ("ok" if enabled else "disabled")
            rows.append(
                PluginStatus(
                    name=name,
                    title=manifest.title if manifest else name,
                    version=plugin.version,
                    enabled=enabled,
                    builtin=plugin.builtin,
                    depends=manifest.depends if manifest else (),
                    status=status,
                )
            )
        return rows


def _validate_settings(plugin: InstalledPlugin, overrides: Mapping[str, Any] | None) -> Any:
    assert plugin.manifest is not None
    settings_cls: Any = plugin.manifest.settings
    if settings_cls is None:
        return None
    expected = f"CRM2_{plugin.name.upper()}_"
    prefix = settings_cls.model_config.get("env_prefix", "")
    if prefix != expected:
        raise ConfigurationError(
            f"{plugin.name}: its settings model {settings_cls.__name__} has env_prefix "
            f"{prefix!r}; set env_prefix={expected!r} in the plugin's config.py"
        )
    try:
        return settings_cls(**dict(overrides or {}))
    except ValidationError as exc:
        # ``from None``: pydantic's error holds the raw input, and a printed traceback would
        # show it (a token, a password); the message names each variable and what is wrong.
        raise ConfigurationError(
            f"{plugin.name} settings are invalid: {settings_problems(exc, expected)}: fix these "
            "environment variables (see env.example)"
        ) from None


def build_plugin_manager(
    settings: Settings,
    *,
    extra_plugins: tuple[object, ...] = (),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> PluginRegistry:
    """Discover, check, order and register the plugins ``settings`` enables.

    :param extra_plugins: plugin objects treated as installed (throw-away test plugins).
    :param plugin_settings: per-plugin keyword overrides for their settings models.
    :raises ConfigurationError: with one message naming the plugin and the fix.
    """
    builtin = discover_builtin()
    builtin_names = [p.name for p in builtin]
    installed = discover_installed(extra_plugins)
    for name in builtin_names:
        if name in installed:
            raise ConfigurationError(
                f"an installed plugin calls itself {name!r}, a name the core uses: rename it"
            )
    enabled = select_enabled(installed, settings.enabled_plugins, builtin_names)
    chosen = {name: installed[name] for name in enabled}
    for plugin in chosen.values():
        check_core_version(plugin, __version__, listed=settings.enabled_plugins is not None)
    ordered = builtin + [chosen[name] for name in dependency_order(chosen)]

    overrides = plugin_settings or {}
    validated = {p.name: _validate_settings(p, overrides.get(p.name)) for p in ordered}

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(Crm2Spec)
    for plugin in ordered:
        assert plugin.manifest is not None
        for spec in plugin.manifest.hookspecs:
            pm.add_hookspecs(cast(Any, spec))
    # pluggy calls last-registered first: registering in reverse dependency
    # order makes plain pm.hook calls run dependencies first as well.
    hooks = known_hooks(pm)
    for plugin in ordered:
        check_markers(plugin.name, plugin.module, hooks)
        check_arguments(pm, plugin.name, plugin.module)
    for plugin in reversed(ordered):
        try:
            pm.register(_facade(pm, plugin.name, plugin.module), name=plugin.name)
        except pluggy.PluginValidationError as exc:
            reason = "; ".join(line for line in str(exc).splitlines() if line.strip())
            raise ConfigurationError(
                f"{plugin.name}: {reason}: fix the hook implementation's signature"
            ) from exc
    check_pending(pm)
    installed_all = {p.name: p for p in builtin} | installed
    return PluginRegistry(pm, installed_all, ordered, validated)


# The plugins whose implementations returned a result, in call order, during one
# ``PluginRegistry.call`` (pluggy hands back bare results; this keeps their owners).
_PRODUCERS: ContextVar[list[tuple[str, Any]]] = ContextVar("crm2_hook_producers")


def _close_coroutines(results: Iterable[Any]) -> None:
    """Close the coroutines among ``results`` that will never be awaited (a plugin before
    or after them raised): no "coroutine … was never awaited" warning."""
    for result in results:
        if inspect.iscoroutine(result):
            result.close()


def _blame(exc: Exception, plugin_name: str, hook_name: str) -> None:
    """Record on ``exc`` the plugin whose hook raised it: the innermost one, when hooks nest.

    The note shows under the traceback wherever it is printed (uvicorn's log too).
    """
    if getattr(exc, "crm2_plugin", None) is None:
        exc.crm2_plugin = (plugin_name, hook_name)  # type: ignore[attr-defined]
        exc.add_note(f"(raised by the {plugin_name} plugin's {hook_name})")


@contextmanager
def plugin_errors_reported(registry: PluginRegistry) -> Iterator[None]:
    """Inside, a plugin hook's own exception becomes one ``ConfigurationError`` line.

    For the hooks that assemble and start the application: the operator learns
    which plugin failed, in which hook, with what, and where in its code,
    instead of a traceback through pluggy and Starlette.
    """
    try:
        yield
    except ConfigurationError:
        raise
    except Exception as exc:
        culprit: tuple[str, str] | None = getattr(exc, "crm2_plugin", None)
        if culprit is None:
            raise
        plugin_name, hook_name = culprit
        plugin = registry.installed.get(plugin_name)
        frame = _last_frame_in(plugin, traceback.extract_tb(exc.__traceback__))
        where = f" at {frame.filename}:{frame.lineno}" if frame is not None else ""
        fix = (
            "check the settings it uses (env.example)"  # the core's own: always enabled
            if plugin is not None and plugin.builtin
            else f"fix the plugin or its settings, or leave {plugin_name} out of CRM2_PLUGINS"
        )
        raise ConfigurationError(
            f"{plugin_name}: its {hook_name} raised {type(exc).__name__}: {exc}{where}: {fix}"
        ) from exc


def _last_frame_in(
    plugin: InstalledPlugin | None, frames: traceback.StackSummary
) -> traceback.FrameSummary | None:
    """The innermost frame in the plugin's own package (the line its author wrote), else the
    innermost of all (a ValueError from a record the plugin built names the record's line)."""
    top = type(plugin.module).__module__ if plugin is not None else ""
    if plugin is not None and isinstance(plugin.module, ModuleType):
        top = plugin.module.__name__
    package = sys.modules.get(top.partition(".")[0])
    source = getattr(package, "__file__", None)
    if source is not None:
        root = Path(source).parent if Path(source).name == "__init__.py" else Path(source)
        own = [f for f in frames if Path(f.filename).is_relative_to(root)]
        if own:
            return own[-1]
    return frames[-1] if frames else None


def _attributed(
    plugin_name: str, hook_name: str, function: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps the hookimpl marker; pluggy reads the signature through it
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except Exception as exc:
            _blame(exc, plugin_name, hook_name)
            raise
        if result is not None:
            produced = _PRODUCERS.get(None)
            if produced is not None:
                produced.append((plugin_name, result))
        return result

    return call


class _PluginFacade:
    """What is registered with pluggy for one plugin: its hook implementations, attributed.

    A non-wrapper implementation notes its plugin's name when it returns a
    result, so ``PluginRegistry.call`` can pair pluggy's results with plugins.
    Wrappers (``wrapper=True`` / ``hookwrapper=True``) are registered as they are.
    """

    def __init__(self, name: str, module: object) -> None:
        self.__name__ = name
        self.module = module

    def __repr__(self) -> str:
        return f"<crm2 plugin {self.__name__!r} ({self.module!r})>"


def _facade(pm: pluggy.PluginManager, name: str, module: object) -> _PluginFacade:
    facade = _PluginFacade(name, module)
    for attr in dir(module):
        opts = pm.parse_hookimpl_opts(module, attr)
        if opts is None:
            continue
        function = getattr(module, attr)
        if not (opts.get("wrapper") or opts.get("hookwrapper")):
            function = _attributed(name, attr, function)
        setattr(facade, attr, function)
    return facade


def _reverse_order(impls: list[pluggy.HookImpl]) -> list[pluggy.HookImpl]:
    """Reverse the plain implementations within their ``trylast`` / plain / ``tryfirst`` groups."""
    wrappers = [i for i in impls if i.wrapper or i.hookwrapper]
    plain = [i for i in impls if not (i.wrapper or i.hookwrapper)]

    def group(impl: pluggy.HookImpl) -> int:
        return 0 if impl.trylast else 2 if impl.tryfirst else 1

    return sorted(reversed(plain), key=group) + wrappers
