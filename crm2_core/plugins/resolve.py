"""Choosing and ordering the enabled plugins; every failure names the plugin and the fix."""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from crm2_core.errors import ConfigurationError
from crm2_core.plugins.discovery import InstalledPlugin


def _install_hint(name: str) -> str:
    return f"pip install crm2-{name.replace('_', '-')}"


def drop_hint(plugin: InstalledPlugin | str, *, listed: bool) -> str:
    """How to stop running a plugin: depends on whether CRM2_PLUGINS is set at all."""
    name = plugin if isinstance(plugin, str) else plugin.name
    if listed:
        return f"remove {name} from CRM2_PLUGINS"
    dist = None if isinstance(plugin, str) else plugin.distribution
    return (
        f"set CRM2_PLUGINS to the plugins you want, or pip uninstall "
        f"{dist or 'crm2-' + name.replace('_', '-')}"
    )


def select_enabled(
    installed: dict[str, InstalledPlugin], allow_list: list[str] | None, builtin: list[str]
) -> list[str]:
    """Names of the plugins to run: the allow-list (or all installed) closed over ``depends``."""
    if allow_list is None:
        wanted = [name for name, p in installed.items() if p.error is None]
    else:
        wanted = []
        for name in allow_list:
            if name in builtin:
                continue
            if name not in installed:
                raise ConfigurationError(
                    f"CRM2_PLUGINS names {name!r}, which is not installed: {_install_hint(name)} "
                    f"or remove {name} from CRM2_PLUGINS "
                    f"(installed: {', '.join(sorted(installed)) or 'none'})"
                )
            wanted.append(name)
    listed = allow_list is not None
    enabled: list[str] = []
    # (plugin, the enabled plugin that needs it: None for one wanted for itself)
    stack: list[tuple[str, str | None]] = [(name, None) for name in reversed(wanted)]
    while stack:
        name, needed_by = stack.pop()
        if name in enabled:
            continue
        plugin = installed[name]
        if plugin.error is not None:
            if needed_by is None:
                raise ConfigurationError(
                    f"plugin {name} cannot be enabled: {plugin.error}; reinstall it "
                    f"or {drop_hint(plugin, listed=listed)}"
                )
            # the operator asked for the plugin needing it, not for this one
            raise ConfigurationError(
                f"{needed_by} depends on {name}, which cannot be enabled: {plugin.error}: "
                f"reinstall {name} or {drop_hint(installed[needed_by], listed=listed)}"
            )
        assert plugin.manifest is not None
        enabled.append(name)
        for dep in plugin.manifest.depends:
            if dep in builtin:
                continue
            if dep not in installed:
                raise ConfigurationError(
                    f"{name} depends on {dep}, which is not installed: {_install_hint(dep)} "
                    f"or {drop_hint(plugin, listed=listed)}"
                )
            stack.append((dep, name))
    return enabled


def check_core_version(plugin: InstalledPlugin, core_version: str, *, listed: bool = True) -> None:
    """``requires_core`` against the running core; the specifier is quoted as written."""
    assert plugin.manifest is not None
    written = plugin.manifest.requires_core
    try:
        spec = SpecifierSet(written)
    except InvalidSpecifier as exc:
        raise ConfigurationError(
            f"{plugin.name} declares requires_core={plugin.manifest.requires_core!r}, which is "
            f"not a version specifier ({exc}): fix the plugin's manifest"
        ) from exc
    if Version(core_version) not in spec:
        raise ConfigurationError(
            f"{plugin.name} {plugin.version} requires crm2-core {written}, but {core_version} is "
            f"installed: install a {plugin.name} release that supports crm2-core {core_version} "
            f"or {drop_hint(plugin, listed=listed)}"
        )


def dependency_order(plugins: dict[str, InstalledPlugin]) -> list[str]:
    """Kahn's algorithm with a sorted ready set: deterministic, dependencies first."""
    deps = {
        name: {d for d in p.manifest.depends if d in plugins} if p.manifest else set()
        for name, p in plugins.items()
    }
    order: list[str] = []
    remaining = {name: set(ds) for name, ds in deps.items()}
    while remaining:
        ready = sorted(name for name, ds in remaining.items() if not ds)
        if not ready:
            raise ConfigurationError(
                f"plugin dependency cycle: {_describe_cycle(remaining)}: "
                "remove one of these dependencies from a manifest or disable one of the plugins"
            )
        for name in ready:
            order.append(name)
            del remaining[name]
        for ds in remaining.values():
            ds.difference_update(ready)
    return order


def _describe_cycle(graph: dict[str, set[str]]) -> str:
    start = sorted(graph)[0]
    path = [start]
    node = start
    while True:
        node = sorted(graph[node])[0]
        if node in path:
            cycle = [*path[path.index(node) :], node]
            return " -> ".join(cycle)
        path.append(node)
