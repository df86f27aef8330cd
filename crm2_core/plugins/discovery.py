"""Entry-point discovery: what is installed, whether it imports, what it declares."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from crm2_hookspecs import ENTRY_POINT_GROUP, PluginManifest

# The core's own features, registered as plugins through the same hooks, in this order.
BUILTIN_MODULES = (
    "crm2_core.http.plugin",
    "crm2_core.events.plugin",
    "crm2_core.auth.plugin",
    "crm2_core.streams.plugin",
    "crm2_core.observability.metrics_plugin",
    "crm2_core.observability.tracing_plugin",
)


@dataclass
class InstalledPlugin:
    """One plugin as found on this machine, imported or not."""

    name: str
    module: ModuleType | object | None
    manifest: PluginManifest | None
    version: str
    distribution: str | None
    builtin: bool = False
    error: str | None = None


def _manifest_of(obj: object) -> PluginManifest | None:
    manifest = getattr(obj, "manifest", None)
    return manifest if isinstance(manifest, PluginManifest) else None


def _from_object(
    obj: ModuleType | object,
    *,
    builtin: bool,
    distribution: str | None,
    dist_version: str | None,
    entry_name: str | None,
) -> InstalledPlugin:
    manifest = _manifest_of(obj)
    label = entry_name or str(getattr(obj, "__name__", repr(obj)))
    if manifest is None:
        return InstalledPlugin(
            name=entry_name or label,
            module=obj,
            manifest=None,
            version=dist_version or "?",
            distribution=distribution,
            builtin=builtin,
            error=f"{label} has no `manifest = PluginManifest(...)`",
        )
    if entry_name is not None and manifest.name != entry_name:
        return InstalledPlugin(
            name=entry_name,
            module=obj,
            manifest=manifest,
            version=dist_version or "?",
            distribution=distribution,
            builtin=builtin,
            error=(
                f"entry point {entry_name!r} loads a plugin whose manifest is named "
                f"{manifest.name!r}: rename one so they match"
            ),
        )
    version = manifest.version or dist_version or "0"
    return InstalledPlugin(
        name=manifest.name,
        module=obj,
        manifest=manifest,
        version=version,
        distribution=distribution,
        builtin=builtin,
    )


def _load_entry_point(ep: EntryPoint) -> InstalledPlugin:
    dist = ep.dist
    dist_name = dist.name if dist is not None else None
    dist_version = dist.version if dist is not None else None
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not hide the others
        return InstalledPlugin(
            name=ep.name,
            module=None,
            manifest=None,
            version=dist_version or "?",
            distribution=dist_name,
            error=f"failed to import ({type(exc).__name__}: {exc})",
        )
    return _from_object(
        obj, builtin=False, distribution=dist_name, dist_version=dist_version, entry_name=ep.name
    )


def discover_builtin() -> list[InstalledPlugin]:
    from crm2_core import __version__

    return [
        _from_object(
            importlib.import_module(path),
            builtin=True,
            distribution="crm2-core",
            dist_version=__version__,
            entry_name=None,
        )
        for path in BUILTIN_MODULES
    ]


def discover_installed(extra: tuple[object, ...] = ()) -> dict[str, InstalledPlugin]:
    """Every plugin reachable through the ``crm2.plugins`` entry points, plus ``extra`` objects.

    ``extra`` are plugin objects (modules or instances with a ``manifest``) that
    count as installed: the testing kit uses it for throw-away plugins.
    """
    found: dict[str, InstalledPlugin] = {}
    points = entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(points, key=lambda e: (e.name, e.dist.name if e.dist else "")):
        first = found.get(ep.name)
        if first is None:
            found[ep.name] = _load_entry_point(ep)
            continue
        # Which one ran would depend on the order of sys.path: run neither, and say so.
        other = ep.dist.name if ep.dist is not None else "another distribution"
        first.error = (
            f"{first.distribution} and {other} both provide a plugin named {ep.name}: "
            "pip uninstall one of them"
        )
    for obj in extra:
        plugin = _from_object(
            obj, builtin=False, distribution=None, dist_version=None, entry_name=None
        )
        found[plugin.name] = plugin
    return found
