"""The plugin manager: built by a function, never at import."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import ValidationError

from crm2_core import __version__
from crm2_core.errors import ConfigurationError
from crm2_core.plugins.discovery import InstalledPlugin, discover_builtin, discover_installed
from crm2_core.plugins.resolve import check_core_version, dependency_order, select_enabled
from crm2_core.settings import Settings
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

    def _impls(self, hook_name: str, reverse: bool) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook_name)
        impls = sorted(
            caller.get_hookimpls(), key=lambda impl: self._index.get(impl.plugin_name, -1)
        )
        return list(reversed(impls)) if reverse else impls

    def call(
        self, hook_name: str, *, reverse: bool = False, **kwargs: Any
    ) -> Iterator[tuple[str, Any]]:
        """Call a hook in dependency order; yield ``(plugin name, result)`` for non-None results."""
        for impl in self._impls(hook_name, reverse):
            result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            if result is not None:
                yield impl.plugin_name, result

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Flatten list-returning registration hooks into ``(plugin name, item)`` pairs."""
        return [(name, item) for name, items in self.call(hook_name, **kwargs) for item in items]

    async def acall(self, hook_name: str, *, reverse: bool = False, **kwargs: Any) -> None:
        """Call a lifecycle hook in order, awaiting each awaitable before the next plugin."""
        for _name, result in self.call(hook_name, reverse=reverse, **kwargs):
            if inspect.isawaitable(result):
                await result

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
    settings_cls = plugin.manifest.settings
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
        problems = "; ".join(
            f"{expected}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(
            f"{plugin.name} settings are invalid: {problems}: fix these environment "
            f"variables (see env.example)"
        ) from exc


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
        check_core_version(plugin, __version__)
    ordered = builtin + [chosen[name] for name in dependency_order(chosen)]

    overrides = plugin_settings or {}
    validated = {p.name: _validate_settings(p, overrides.get(p.name)) for p in ordered}

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(Crm2Spec)
    for plugin in ordered:
        assert plugin.manifest is not None
        for spec in plugin.manifest.hookspecs:
            pm.add_hookspecs(spec)
    # pluggy calls last-registered first: registering in reverse dependency
    # order makes plain pm.hook calls run dependencies first as well.
    for plugin in reversed(ordered):
        try:
            pm.register(plugin.module, name=plugin.name)
        except pluggy.PluginValidationError as exc:
            raise ConfigurationError(
                f"{plugin.name}: {exc}: fix the hook implementation's signature"
            ) from exc
    _check_pending(pm)
    installed_all = {p.name: p for p in builtin} | installed
    return PluginRegistry(pm, installed_all, ordered, validated)


def _check_pending(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()``, but naming the plugin and the hook instead of an object repr."""
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
        raise ConfigurationError(
            f"{owner} implements {', '.join(unknown) or 'a hook'}, which no hookspec defines: "
            "check the spelling against docs/plugins/hooks.md (a plugin's own hooks need "
            "its manifest.hookspecs)"
        ) from exc
