"""Checking a plugin's hook implementations, with one-line messages that say what to do.

pluggy's own messages are several lines long and name objects by their repr;
these name the plugin, the function and the fix, and point at the hook
reference by its published title.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable

import pluggy

from crm2_core.errors import ConfigurationError
from crm2_hookspecs import PROJECT_NAME

# How the hook reference is published (docs/plugins/hooks.md, titled "Hooks").
HOOK_REFERENCE = '"Hooks" in the crm2 plugin documentation'
IMPL_MARK = f"{PROJECT_NAME}_impl"
SPEC_MARK = f"{PROJECT_NAME}_spec"


def known_hooks(pm: pluggy.PluginManager) -> list[str]:
    """Every hook with a spec: the core's and the enabled plugins' own."""
    return sorted(
        name
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_") and caller.has_spec()
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def _foreign_marker(function: object) -> str | None:
    """The name of a pluggy marker on ``function`` that is not crm2's ``@hookimpl``."""
    marks = [
        key
        for key in getattr(function, "__dict__", {})
        if (key.endswith("_impl") or key.endswith("_spec")) and key != IMPL_MARK
    ]
    return marks[0] if marks else None


def check_markers(plugin: str, module: object, hooks: Iterable[str]) -> None:
    """A hook-named function marked with another marker (or none) is an error, not ignored."""
    hook_names = set(hooks)
    for attr in dir(module):
        if not attr.startswith(f"{PROJECT_NAME}_"):
            continue
        function = getattr(module, attr, None)
        if not callable(function) or hasattr(function, IMPL_MARK):
            continue
        mark = _foreign_marker(function)
        if mark == SPEC_MARK:
            raise ConfigurationError(
                f"{plugin}: {attr} is marked @hookspec, which declares a hook; to implement "
                "it use `from crm2_hookspecs import hookimpl` and mark it @hookimpl"
            )
        if mark is not None:
            project = mark.rsplit("_", 1)[0]
            raise ConfigurationError(
                f"{plugin}: {attr} is marked with {project}'s hookimpl, which crm2 ignores: "
                "use `from crm2_hookspecs import hookimpl` and mark it @hookimpl"
            )
        if attr in hook_names and inspect.isfunction(getattr(function, "__func__", function)):
            raise ConfigurationError(
                f"{plugin}: {attr} is a crm2 hook but has no @hookimpl, so crm2 would never "
                "call it: mark it with `from crm2_hookspecs import hookimpl`"
            )


def _parameters(function: object) -> list[str]:
    target = getattr(function, "__wrapped__", function)
    return [
        name
        for name, p in inspect.signature(target).parameters.items()  # type: ignore[arg-type]
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def check_arguments(pm: pluggy.PluginManager, plugin: str, module: object) -> None:
    """Each implementation takes only parameters its spec passes: one line per mistake."""
    for attr in dir(module):
        function = getattr(module, attr, None)
        if not callable(function) or not hasattr(function, IMPL_MARK):
            continue
        caller = getattr(pm.hook, attr, None)
        if caller is None or caller.spec is None:
            continue
        passed = list(caller.spec.argnames) + list(caller.spec.kwargnames)
        unknown = [name for name in _parameters(function) if name not in passed]
        if unknown:
            hint = did_you_mean(unknown[0], passed).rstrip(" ")
            raise ConfigurationError(
                f"{plugin}: {attr}() takes {', '.join(unknown)}, which {attr} does not pass "
                f"(it passes {', '.join(passed) or 'nothing'}){': ' + hint if hint else ''}"
                f" — see {attr} in {HOOK_REFERENCE}"
            )


def unknown_hook_message(pm: pluggy.PluginManager, owner: str, unknown: list[str]) -> str:
    known = known_hooks(pm)
    suggestion = did_you_mean(unknown[0], known) if unknown else ""
    names = ", ".join(unknown) or "a hook"
    return (
        f"{owner} implements {names}, which no hookspec defines: {suggestion}"
        f"check the spelling against {HOOK_REFERENCE} (a plugin's own hooks need "
        "that plugin enabled and listed in its manifest.hookspecs)"
    )


def check_pending(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()``, but naming the plugin, the hook and the likely right name."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        owner = pm.get_name(exc.plugin) or "a plugin"
        unknown = sorted(
            name
            for name, caller in vars(pm.hook).items()
            if not name.startswith("_")
            and not caller.has_spec()
            and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
        )
        raise ConfigurationError(unknown_hook_message(pm, owner, unknown)) from exc
