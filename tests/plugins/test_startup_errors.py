"""Start-up errors that say what to do, one line each (the plugin author's kit, issue 19)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest

from crm2_core.bootstrap import build_app_context
from crm2_core.errors import ConfigurationError
from crm2_core.http.app import create_app
from crm2_core.plugins import PluginRegistry, build_plugin_manager
from crm2_core.settings import Settings
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, hookimpl, hookspec


def build(plugins: str | None, *extra: object) -> PluginRegistry:
    settings = Settings(_env_file=None, plugins=plugins)  # type: ignore[call-arg]
    return build_plugin_manager(settings, extra_plugins=extra)


def refused(plugins: str | None, *extra: object) -> str:
    with pytest.raises(ConfigurationError) as error:
        build(plugins, *extra)
    message = str(error.value)
    assert "\n" not in message, message
    return message


def plain(name: str, *depends: str, requires_core: str = ">=0.1,<1") -> Any:
    class Plugin:
        manifest = PluginManifest(
            name=name, title=name.title(), depends=depends, requires_core=requires_core
        )

    return Plugin()


def test_with_crm2_plugins_unset_a_missing_dependency_says_set_it_or_uninstall() -> None:
    message = refused(None, plain("invoicing", "ledger"))
    assert message == (
        "invoicing depends on ledger, which is not installed: pip install crm2-ledger or "
        "set CRM2_PLUGINS to the plugins you want, or pip uninstall crm2-invoicing"
    )
    assert "remove invoicing from CRM2_PLUGINS" not in message


def test_with_crm2_plugins_set_it_says_remove_it_from_the_list() -> None:
    message = refused("invoicing", plain("invoicing", "ledger"))
    assert message.endswith("or remove invoicing from CRM2_PLUGINS")


def test_the_version_specifier_is_quoted_as_the_author_wrote_it() -> None:
    message = refused(None, plain("future", requires_core=">=99.0,<100"))
    assert "requires crm2-core >=99.0,<100, but" in message  # not packaging's "<100,>=99.0"
    assert "set CRM2_PLUGINS to the plugins you want, or pip uninstall crm2-future" in message


class Misspelt:
    manifest = PluginManifest(name="typo", title="Typo")

    @hookimpl
    def crm2_router(self) -> list[Any]:
        return []


def test_a_misspelt_hook_gets_did_you_mean_and_the_references_title() -> None:
    message = refused(None, Misspelt())
    assert message.startswith(
        "typo implements crm2_router, which no hookspec defines: did you mean crm2_routers? "
    )
    assert '"Hooks" in the crm2 plugin documentation' in message
    assert "hooks.md" not in message and "/" not in message


class WrongArgument:
    manifest = PluginManifest(name="wrongarg", title="Wrong argument")

    @hookimpl
    def crm2_routers(self, contxt: Any) -> list[Any]:
        return []


def test_a_misspelt_hookimpl_argument_is_one_line_with_the_right_name() -> None:
    message = refused(None, WrongArgument())
    assert message == (
        "wrongarg: crm2_routers() takes contxt, which crm2_routers does not pass "
        "(it passes context): did you mean context? — see crm2_routers in "
        '"Hooks" in the crm2 plugin documentation'
    )


other_impl = pluggy.HookimplMarker("pytest")


class ForeignMarker:
    manifest = PluginManifest(name="foreign", title="Foreign marker")

    @other_impl
    def crm2_routers(self) -> list[Any]:
        return []


class SpecMarker:
    manifest = PluginManifest(name="specmark", title="Spec marker")

    @hookspec
    def crm2_permissions(self) -> Sequence[Any]:
        return []


class NoMarker:
    manifest = PluginManifest(name="nomark", title="No marker")

    def crm2_permissions(self) -> Sequence[Any]:
        return []


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (
            ForeignMarker(),
            "foreign: crm2_routers is marked with pytest's hookimpl, which crm2 ignores",
        ),
        (SpecMarker(), "specmark: crm2_permissions is marked @hookspec"),
        (NoMarker(), "nomark: crm2_permissions is a crm2 hook but has no @hookimpl"),
    ],
    ids=["another-projects-hookimpl", "hookspec-instead-of-hookimpl", "no-marker"],
)
def test_a_hook_with_the_wrong_marker_is_reported_not_ignored(plugin: Any, expected: str) -> None:
    message = refused(None, plugin)
    assert message.startswith(expected), message
    assert "from crm2_hookspecs import hookimpl" in message


# -- crm2 plugins list with a broken plugin ----------------------------------------------

BROKEN = {
    "oldcore": """
        from crm2_hookspecs import PluginManifest
        manifest = PluginManifest(name="oldcore", title="Old", requires_core=">=7,<8")
    """,
    "needy": """
        from crm2_hookspecs import PluginManifest
        manifest = PluginManifest(name="needy", title="Needy", depends=("ledger",))
    """,
    "typo": """
        from crm2_hookspecs import PluginManifest, hookimpl
        manifest = PluginManifest(name="typo", title="Typo")

        @hookimpl
        def crm2_routrs():
            return []
    """,
    "fine": """
        from crm2_hookspecs import PluginManifest
        manifest = PluginManifest(name="fine", title="Fine")
    """,
}


def install_fake_plugins(site: Path, plugins: dict[str, str]) -> None:
    """Distributions with a ``crm2.plugins`` entry point, found on ``sys.path``."""
    for name, source in plugins.items():
        (site / f"crm2_fake_{name}.py").write_text(textwrap.dedent(source))
        info = site / f"crm2_fake_{name}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: crm2-fake-{name}\nVersion: 0.1.0\n"
        )
        (info / "entry_points.txt").write_text(f"[crm2.plugins]\n{name} = crm2_fake_{name}\n")


def plugins_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins: dict[str, str]
) -> tuple[Any, dict[str, list[str]]]:
    """``crm2 plugins list`` with ``plugins`` installed and enabled: the result and its
    table's rows by plugin name."""
    from click.testing import CliRunner

    import crm2_core.cli.commands  # noqa: F401  (registers the core commands)
    from crm2_core.cli.main import cli
    from crm2_core.cli.output import console

    site = tmp_path / "site"
    site.mkdir()
    install_fake_plugins(site, plugins)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(console(), "width", 250)
    result = CliRunner().invoke(
        cli,
        ["plugins", "list"],
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
            "CRM2_PLUGINS": ",".join(plugins),
            "COLUMNS": "250",
        },
    )
    rows = {
        cells[0]: cells
        for line in result.output.splitlines()
        if line.startswith("│")
        for cells in [[c.strip() for c in line.strip("│").split("│")]]
    }
    return result, rows


def test_plugins_list_runs_with_broken_plugins_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, rows = plugins_list(tmp_path, monkeypatch, BROKEN)
    assert result.exit_code == 1, result.output
    assert rows["oldcore"][4].startswith("incompatible: needs crm2-core >=7,<8, this is ")
    assert rows["needy"][4].startswith("missing dependency: ledger is not installed")
    assert (
        rows["typo"][4] == "broken hook: crm2_routrs is no crm2 hook (did you mean crm2_routers?)"
    )
    assert rows["fine"][2:5] == ["yes", "-", "ok"]
    assert rows["oldcore"][2] == "no"
    assert "Error: " in result.output  # the start-up error, once, after the table


# -- crm2 serve with a plugin that cannot be mounted -------------------------------------

STRAY = """
    from fastapi import APIRouter
    from crm2_hookspecs import PluginManifest, hookimpl

    manifest = PluginManifest(name="stray", title="Stray")

    @hookimpl
    def crm2_routers():
        router = APIRouter()
        router.add_api_route("/takeover", lambda: None, methods=["GET"])
        return [router]
"""


def serve_with(tmp_path: Path, plugins: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``crm2 serve --migrate`` with ``plugins`` installed and enabled, on a free port."""
    site = tmp_path / "site"
    site.mkdir()
    install_fake_plugins(site, plugins)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env.update(
        CRM2_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}",
        CRM2_ENV="development",
        CRM2_PLUGINS=",".join(plugins),
        PYTHONPATH=str(site),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return subprocess.run(
        [str(Path(sys.executable).with_name("crm2")), "serve", "--migrate", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_with_a_route_outside_the_plugins_prefix_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    result = serve_with(tmp_path, {"stray": STRAY})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert (
        "Error: stray serves /takeover, outside its prefix /api/v1/stray: "
        "use APIRouter(prefix='/api/v1/stray')"
    ) in result.stderr
    assert not (tmp_path / "crm2.db").exists()  # nothing migrated, no admin created


# -- a plugin's own hook raising while the app is assembled or started ----------------------


class FailingConfigure:
    manifest = PluginManifest(name="conf", title="Conf")

    @hookimpl
    def crm2_configure(self) -> None:
        raise KeyError("CRM2_CONF_TOKEN")


class FailingRouters:
    manifest = PluginManifest(name="lazy", title="Lazy")

    @hookimpl
    def crm2_routers(self) -> Sequence[Any]:
        raise ImportError("cannot import name 'router' from 'lazy.routes'")


class FailingStartup:
    manifest = PluginManifest(name="boom", title="Boom")

    @hookimpl
    def crm2_startup(self) -> Awaitable[None]:
        async def start() -> None:
            raise RuntimeError("ledger unreachable")

        return start()


def blames(message: str, plugin: str, hook: str, error: str) -> None:
    assert "\n" not in message, message
    assert message.startswith(f"{plugin}: its {hook} raised {error} at {__file__}:"), message
    assert message.endswith(f"or leave {plugin} out of CRM2_PLUGINS"), message


def test_a_configure_hook_raising_names_the_plugin_the_hook_and_the_line() -> None:
    settings = Settings(_env_file=None, plugins="conf")  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError) as error:
        build_app_context(settings, extra_plugins=(FailingConfigure(),))
    blames(str(error.value), "conf", "crm2_configure", "KeyError: 'CRM2_CONF_TOKEN'")
    assert isinstance(error.value.__cause__, KeyError)  # the traceback is still there


async def test_a_routers_hook_raising_names_the_plugin(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", plugins="lazy"
    )
    context = build_app_context(settings, extra_plugins=(FailingRouters(),))
    try:
        with pytest.raises(ConfigurationError) as error:
            create_app(context=context)
    finally:
        await context.aclose()
    blames(
        str(error.value),
        "lazy",
        "crm2_routers",
        "ImportError: cannot import name 'router' from 'lazy.routes'",
    )


async def test_a_startup_awaitable_raising_names_the_plugin(crm2_app_factory: AppFactory) -> None:
    with pytest.raises(ConfigurationError) as error:
        await crm2_app_factory(plugins=["boom"], extra_plugins=(FailingStartup(),))
    blames(str(error.value), "boom", "crm2_startup", "RuntimeError: ledger unreachable")


class FailingPermissions:
    manifest = PluginManifest(name="perms", title="Perms")

    @hookimpl
    def crm2_permissions(self) -> Sequence[Any]:
        raise ValueError("no permissions today")


def test_outside_start_up_a_hooks_exception_is_its_own_with_a_note_naming_the_plugin() -> None:
    registry = build("perms", FailingPermissions())
    with pytest.raises(ValueError, match="no permissions today") as error:
        registry.call("crm2_permissions")
    assert error.value.__notes__ == ["(raised by the perms plugin's crm2_permissions)"]


def test_two_distributions_with_one_plugin_name_are_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which of the two would run depended on the order of sys.path, silently."""
    source = (
        "from crm2_hookspecs import PluginManifest\n"
        'manifest = PluginManifest(name="twin", title="{}")\n'
    )
    for dist in ("crm2-twin", "crm2-twin-fork"):
        module = dist.replace("-", "_")
        (tmp_path / f"{module}.py").write_text(source.format(dist))
        info = tmp_path / f"{module}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[crm2.plugins]\ntwin = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    message = refused("twin")
    assert message.startswith("plugin twin cannot be enabled: ")
    assert "crm2-twin and crm2-twin-fork both provide a plugin named twin" in message
    assert "pip uninstall one of them" in message


class BareRouter:
    manifest = PluginManifest(name="bare", title="Bare")

    @hookimpl
    def crm2_routers(self) -> Any:
        from fastapi import APIRouter

        return APIRouter(prefix="/api/v1/bare")  # not [router]


class BarePermission:
    manifest = PluginManifest(name="bare", title="Bare")

    @hookimpl
    def crm2_permissions(self) -> Any:
        from crm2_hookspecs import Permission

        return Permission("bare:read", "Read")  # not [permission]


async def test_a_list_hook_returning_one_item_instead_of_a_list_names_the_plugin(
    tmp_path: Path,
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", plugins="bare"
    )
    with pytest.raises(ConfigurationError) as error:
        build_app_context(settings, extra_plugins=(BarePermission(),))
    assert str(error.value) == (
        "bare: crm2_permissions returned a single Permission, not a list: return a list of them"
    )

    context = build_app_context(settings, extra_plugins=(BareRouter(),))
    try:
        with pytest.raises(ConfigurationError) as error:
            create_app(context=context)
    finally:
        await context.aclose()
    assert str(error.value) == (
        "bare: crm2_routers returned a single APIRouter, not a list: return a list of them"
    )


@pytest.mark.parametrize(
    ("plugins", "fix"),
    [
        ("invoicing", "reinstall ledger or remove invoicing from CRM2_PLUGINS"),
        (None, "reinstall ledger or set CRM2_PLUGINS to the plugins you want, or pip uninstall "
               "crm2-fake-invoicing"),
    ],
    ids=["listed", "unset"],
)  # fmt: skip
def test_a_dependency_that_does_not_import_is_blamed_on_the_plugin_needing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins: str | None, fix: str
) -> None:
    """Not 'remove ledger from CRM2_PLUGINS': the operator never listed ledger."""
    install_fake_plugins(
        tmp_path,
        {
            "ledger": "import ledgerlib_missing\n",
            "invoicing": """
                from crm2_hookspecs import PluginManifest
                manifest = PluginManifest(name="invoicing", title="I", depends=("ledger",))
            """,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    message = refused(plugins)
    assert message == (
        "invoicing depends on ledger, which cannot be enabled: failed to import "
        "(ModuleNotFoundError: No module named 'ledgerlib_missing'): " + fix
    )


async def test_a_core_plugins_startup_failure_points_at_settings_not_crm2_plugins(
    crm2_app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core's own plugins always run: 'leave core out of CRM2_PLUGINS' would be no fix."""
    import crm2_core.http.plugin as core_plugin

    @hookimpl
    def crm2_startup() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(core_plugin, "crm2_startup", crm2_startup, raising=False)
    with pytest.raises(ConfigurationError) as error:
        await crm2_app_factory()
    message = str(error.value)
    assert message.startswith(
        "core: its crm2_startup raised ConnectionRefusedError: [Errno 111] Connection refused at "
    ), message
    assert message.endswith(": check the settings it uses (env.example)"), message


class BadRecord:
    manifest = PluginManifest(name="badrecord", title="Bad record")

    @hookimpl
    def crm2_configure(self) -> None:
        from crm2_hookspecs import Permission

        Permission("no colon", "Read")  # ValueError, raised inside crm2_hookspecs


def test_the_line_named_is_the_plugins_own_not_the_librarys() -> None:
    settings = Settings(_env_file=None, plugins="badrecord")  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError) as error:
        build_app_context(settings, extra_plugins=(BadRecord(),))
    line = BadRecord.crm2_configure.__code__.co_firstlineno + 4
    blames(
        str(error.value),
        "badrecord",
        "crm2_configure",
        "ValueError: permission 'no colon' must look like 'plugin:action'",
    )
    assert f" at {__file__}:{line}: " in str(error.value)


COLLIDING = {
    "first": """
        from fastapi import APIRouter
        from crm2_hookspecs import PluginManifest, hookimpl

        manifest = PluginManifest(name="first", title="First")

        @hookimpl
        def crm2_routers():
            router = APIRouter(prefix="/api/v1/first")
            router.add_api_route("/items", lambda: None, methods=["GET"])
            return [router]
    """,
    "plugins": """
        from fastapi import APIRouter
        from crm2_hookspecs import PluginManifest, hookimpl

        manifest = PluginManifest(name="plugins", title="Takes the core's path")

        @hookimpl
        def crm2_routers():
            router = APIRouter(prefix="/api/v1/plugins")
            router.add_api_route("", lambda: None, methods=["GET"])
            return [router]
    """,
}


def test_plugins_list_shows_a_plugin_whose_routes_cannot_be_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every plugin loads, but one serves a path the core serves: `crm2 serve` would stop,
    so the list says which plugin and why, and exits 1."""
    result, rows = plugins_list(tmp_path, monkeypatch, COLLIDING)
    assert result.exit_code == 1, result.output
    assert rows["first"][2:5] == ["yes", "-", "ok"]
    assert rows["plugins"][2] == "no"
    assert rows["plugins"][4].startswith(
        "broken: plugins serves GET /api/v1/plugins, which core serves already"
    )
    assert "Error: plugins serves GET /api/v1/plugins" in result.output


# -- a bad secret-bearing setting is named, never shown -------------------------------------

VAULT = """
    from pydantic import SecretStr, field_validator
    from pydantic_settings import BaseSettings, SettingsConfigDict
    from crm2_hookspecs import PluginManifest

    class VaultSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="CRM2_VAULT_")
        token: SecretStr | None = None

        @field_validator("token")
        @classmethod
        def _long_enough(cls, value):
            if value is not None and len(value.get_secret_value()) < 64:
                raise ValueError("the token must be at least 64 characters")
            return value

    manifest = PluginManifest(name="vault", title="Vault", settings=VaultSettings)
"""
VAULT_TOKEN = "hunter2-vault-token-do-not-print"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CRM2_VAULT_TOKEN", VAULT_TOKEN, "the token must be at least 64"),
        ("CRM2_BROKER_URL", "amqp:/u:hunter2-broker@h", "must start with memory://"),
    ],
)
def test_a_bad_secret_setting_is_named_but_its_value_appears_nowhere_at_start_up(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    """pydantic's ValidationError holds the raw input: chained to the ConfigurationError (a
    plugin's settings) or raised bare (the core's, by ``create_app()`` without settings), an
    uncaught start-up error (an app factory under uvicorn) printed it in its traceback."""
    site = tmp_path / "site"
    site.mkdir()
    install_fake_plugins(site, {"vault": VAULT})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env.update(
        CRM2_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}",
        CRM2_ENV="development",
        CRM2_PLUGINS="vault",
        PYTHONPATH=str(site),
    )
    env[variable] = value
    crm2 = str(Path(sys.executable).with_name("crm2"))
    factory = "from crm2_core.http.app import create_app; create_app()"
    for command in ([crm2, "serve", "--port", "1"], [sys.executable, "-c", factory]):
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"{variable}: Value error, {says}" in output, output
        assert value not in output, output
