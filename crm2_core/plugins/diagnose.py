"""What ``crm2 plugins list`` shows when the plugins cannot all start: each one's status.

``build_plugin_manager`` stops at the first problem; this looks at every
installed plugin on its own and never raises, so the list still prints and
says which plugin is ``incompatible``, has a ``missing dependency`` or a
``broken hook`` (or is ``broken``: it does not import), with the reason.
"""

from __future__ import annotations

from typing import Any, cast

import pluggy

from crm2_core import __version__
from crm2_core.errors import ConfigurationError
from crm2_core.plugins.discovery import InstalledPlugin, discover_builtin, discover_installed
from crm2_core.plugins.hookcheck import check_arguments, check_markers, known_hooks
from crm2_core.plugins.manager import PluginStatus, _facade
from crm2_core.plugins.resolve import check_core_version
from crm2_core.settings import Settings
from crm2_hookspecs import PROJECT_NAME, Crm2Spec


def _own_problem(plugin: InstalledPlugin, builtin: set[str], installed: set[str]) -> str | None:
    if plugin.error is not None or plugin.manifest is None:
        return f"broken: {plugin.error}"
    try:
        check_core_version(plugin, __version__)
    except ConfigurationError:
        return (
            f"incompatible: needs crm2-core {plugin.manifest.requires_core}, this is {__version__}"
        )
    missing = [d for d in plugin.manifest.depends if d not in builtin | installed]
    if missing:
        hints = ", ".join(f"pip install crm2-{d.replace('_', '-')}" for d in missing)
        return f"missing dependency: {', '.join(missing)} is not installed ({hints})"
    return None


def _hook_problem(plugin: InstalledPlugin, healthy: list[InstalledPlugin]) -> str | None:
    """Register ``plugin`` alone, with every healthy plugin's hookspecs known."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(Crm2Spec)
    for other in healthy:
        assert other.manifest is not None
        for spec in other.manifest.hookspecs:
            pm.add_hookspecs(cast(Any, spec))
    try:
        check_markers(plugin.name, plugin.module, known_hooks(pm))
        check_arguments(pm, plugin.name, plugin.module)
        pm.register(_facade(pm, plugin.name, plugin.module), name=plugin.name)
    except ConfigurationError as exc:
        return f"broken hook: {str(exc).removeprefix(plugin.name + ': ')}"
    except pluggy.PluginValidationError as exc:
        return "broken hook: " + "; ".join(x for x in str(exc).splitlines() if x.strip())
    unknown = sorted(
        name
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_") and not caller.has_spec() and caller.get_hookimpls()
    )
    if unknown:
        from crm2_core.plugins.hookcheck import did_you_mean

        hint = did_you_mean(unknown[0], known_hooks(pm)).strip()
        return f"broken hook: {', '.join(unknown)} is no crm2 hook" + (f" ({hint})" if hint else "")
    return None


def diagnose(settings: Settings) -> list[PluginStatus]:
    """One row per installed plugin; ``status`` says ``ok``, ``disabled`` or what is wrong."""
    builtin = discover_builtin()
    builtin_names = {p.name for p in builtin}
    installed = discover_installed()
    problems: dict[str, str] = {}
    for name, plugin in installed.items():
        problem = _own_problem(plugin, builtin_names, set(installed))
        if problem is not None:
            problems[name] = problem
    healthy = [p for n, p in installed.items() if n not in problems]
    for plugin in [*builtin, *healthy]:
        problem = _hook_problem(plugin, [*builtin, *healthy])
        if problem is not None:
            problems[plugin.name] = problem
    changed = True
    while changed:  # a plugin whose dependency cannot run cannot run either
        changed = False
        for name, plugin in installed.items():
            if name in problems or plugin.manifest is None:
                continue
            bad = [d for d in plugin.manifest.depends if d in problems]
            if bad:
                problems[name] = f"missing dependency: {bad[0]} cannot run ({problems[bad[0]]})"
                changed = True

    allow = settings.enabled_plugins
    wanted = set(installed) if allow is None else {n for n in allow if n in installed}
    stack = list(wanted)
    while stack:
        manifest = installed[stack.pop()].manifest
        for dep in manifest.depends if manifest else ():
            if dep in installed and dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
    rows = []
    for plugin in [*builtin, *(installed[n] for n in sorted(installed))]:
        enabled = plugin.builtin or plugin.name in wanted
        problem = problems.get(plugin.name)
        status = problem or ("ok" if enabled else "disabled")
        manifest = plugin.manifest
        rows.append(
            PluginStatus(
                name=plugin.name,
                title=manifest.title if manifest else plugin.name,
                version=plugin.version,
                enabled=enabled and problem is None,
                builtin=plugin.builtin,
                depends=manifest.depends if manifest else (),
                status=status,
            )
        )
    return sorted(rows, key=lambda r: (not r.enabled, r.name))
