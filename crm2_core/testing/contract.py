"""``assert_plugin_contract()``: what every crm2 plugin promises, checked in one call.

::

    @pytest.mark.crm2_plugins("loyalty")
    async def test_loyalty_keeps_the_plugin_contract(crm2_app_factory):
        await assert_plugin_contract("loyalty", crm2_app_factory)

It starts an app with the plugin (and its dependencies) and checks:

- the manifest: its name is the entry point's, ``requires_core`` is a valid
  specifier this core satisfies, every dependency is installed, the settings
  model reads ``CRM2_<NAME>_*``;
- hooks: every ``@hookimpl`` names a known hook with known arguments (the
  start-up checks; an error fails the contract with their one-line message);
- names: tables ``<name>_*`` tagged ``{"info": {"plugin": "<name>"}}``, routes
  under ``/api/v1/<name>``, permissions ``<name>:*``, event types ``<name>.*``,
  SSE channels named ``<name>`` or ``<name>.*``/``<name>_*``, scheduled jobs and
  seeds run under the plugin's name (the core prefixes them);
- every route has an auth decision: it depends on ``CurrentPrincipal`` or
  ``require(...)``, or says how it authenticates otherwise, out loud:
  ``openapi_extra={"x-crm2-auth": "public"}`` (or a reason: "the feed token in the path");
- migrations round-trip: the plugin's branch downgrades to base (its tables
  gone) and upgrades again to its head, on the test's database.

Every problem found is listed in the one ``AssertionError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi.routing import APIRoute
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from sqlalchemy import text

from crm2_core import __version__
from crm2_core import migrate as migrations
from crm2_core.http.principal import current_principal
from crm2_core.testing.app import Crm2TestApp
from crm2_core.testing.lifecycle import upgrade_keeping_rows


def _manifest_problems(app: Crm2TestApp, name: str) -> list[str]:
    plugin = app.context.plugins.installed.get(name)
    if plugin is None or plugin.manifest is None:
        return [f"{name} is not installed, or has no manifest"]
    manifest = plugin.manifest
    problems = []
    if manifest.name != name:
        problems.append(f"manifest.name is {manifest.name!r}, not {name!r}")
    try:
        if Version(__version__) not in SpecifierSet(manifest.requires_core):
            problems.append(f"requires_core {manifest.requires_core} excludes {__version__}")
    except InvalidSpecifier:
        problems.append(f"requires_core {manifest.requires_core!r} is not a version specifier")
    for dep in manifest.depends:
        if dep not in app.context.plugins.installed:
            problems.append(f"depends on {dep}, which is not installed")
    settings: Any = manifest.settings
    if settings is not None:
        prefix = settings.model_config.get("env_prefix", "")
        if prefix != f"CRM2_{name.upper()}_":
            problems.append(f"settings env_prefix is {prefix!r}, not 'CRM2_{name.upper()}_'")
    if not manifest.title.strip():
        problems.append("manifest.title is empty")
    return problems


def _results(app: Crm2TestApp, hook: str, name: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for plugin, result in app.context.plugins.call(hook, **kwargs):
        if plugin == name and result is not None:
            items.extend(result)
    return items


def _name_problems(app: Crm2TestApp, name: str) -> list[str]:
    problems = []
    context: Any = app.context
    for model in _results(app, "crm2_models", name):
        table = getattr(model, "__table__", None)
        if table is None:
            problems.append(f"crm2_models returned {model!r}, which is not a table model")
            continue
        if not table.name.startswith(f"{name}_"):
            problems.append(f"table {table.name} does not start with {name}_")
        if table.info.get("plugin") != name:
            problems.append(
                f'table {table.name} lacks __table_args__ {{"info": {{"plugin": "{name}"}}}}'
            )
    for permission in _results(app, "crm2_permissions", name):
        if not permission.name.startswith(f"{name}:"):
            problems.append(f"permission {permission.name} does not start with {name}:")
    for event_type in _results(app, "crm2_event_types", name):
        type_name = getattr(event_type, "event_type", "")
        if not str(type_name).startswith(f"{name}."):
            problems.append(f"event type {type_name or event_type!r} does not start with {name}.")
    for channel in _results(app, "crm2_sse_channels", name, context=context):
        if channel.name != name and not channel.name.startswith((f"{name}.", f"{name}_")):
            problems.append(f"SSE channel {channel.name} is not named {name} or {name}.*")
        if not channel.permission.startswith(f"{name}:"):
            problems.append(f"SSE channel {channel.name} needs {channel.permission}, not {name}:*")
    return problems


def _has_principal(dependant: Any) -> bool:
    return any(
        dep.call is current_principal or _has_principal(dep) for dep in dependant.dependencies
    )


def _route_problems(app: Crm2TestApp, name: str) -> list[str]:
    problems = []
    prefix = f"/api/v1/{name}"
    routers = _results(app, "crm2_routers", name, context=app.context)
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            if not (route.path == prefix or route.path.startswith(prefix + "/")):
                problems.append(f"route {route.path} is outside {prefix}")
            said = str((route.openapi_extra or {}).get("x-crm2-auth") or "").strip()
            if not said and not _has_principal(route.dependant):
                methods = ",".join(sorted(route.methods or ()))
                problems.append(
                    f"{methods} {route.path} has no auth decision: depend on "
                    "require(...) or CurrentPrincipal, or say "
                    'openapi_extra={"x-crm2-auth": "public"}'
                )
    return problems


async def _tables(app: Crm2TestApp, name: str) -> set[str]:
    async with app.context.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        names = {r[0] for r in await conn.execute(text(query))}
    return {t for t in names if t.startswith(f"{name}_")}


async def _migration_problems(app: Crm2TestApp, name: str) -> list[str]:
    context = app.context
    sources = [s.plugin for s in migrations.migration_sources(context.plugins)]
    if name not in sources:
        return (
            [f"{name} has no migrations (crm2_migrations)"]
            if _results(app, "crm2_models", name)
            else []
        )
    dependents = [
        p.name
        for p in context.plugins.ordered
        if name in (p.manifest.depends if p.manifest else ())
    ]
    if dependents:
        return []  # their foreign keys would stop the downgrade: checked in their own contract
    problems = []
    before = await _tables(app, name)
    try:
        await migrations.downgrade(context.engine, context.plugins, name, "base")
        left = await _tables(app, name)
        if left:
            problems.append(f"downgrade to base left tables: {sorted(left)}")
    finally:
        await upgrade_keeping_rows(
            context.engine,
            context.settings.database_url,
            lambda: migrations.upgrade(context.engine, context.plugins, name),
        )
    states = await migrations.states(context.engine, context.plugins, name)
    if not all(state.up_to_date for state in states):
        problems.append("upgrade after the downgrade did not reach the head")
    if await _tables(app, name) != before:
        problems.append("upgrade after the downgrade did not recreate the same tables")
    return problems


async def assert_plugin_contract(
    name: str,
    crm2_app_factory: Callable[..., Awaitable[Crm2TestApp]],
    *,
    extra_plugins: Sequence[object] = (),
    migrations_round_trip: bool = True,
) -> None:
    """Start an app with plugin ``name`` and fail with every way it breaks the contract.

    :param extra_plugins: plugin objects counted as installed (a plugin not pip-installed).
    :param migrations_round_trip: downgrade and upgrade its branch (on the test's database).
    """
    try:
        # no scheduler: a job running beside the migrations round trip deadlocks its DROPs
        app = await crm2_app_factory(
            plugins=[name], extra_plugins=tuple(extra_plugins), scheduler_enabled=False
        )
    except Exception as exc:  # a start-up check refused it: that message is the finding
        raise AssertionError(f"{name} does not start: {exc}") from exc
    problems = [
        *_manifest_problems(app, name),
        *_name_problems(app, name),
        *_route_problems(app, name),
    ]
    if migrations_round_trip:
        problems += await _migration_problems(app, name)
    assert not problems, f"{name} breaks the plugin contract:\n- " + "\n- ".join(problems)
