"""The plugin manager on its own: selection, ordering, checks (no database, no HTTP)."""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any, ClassVar

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm2_core.errors import ConfigurationError
from crm2_core.plugins import PluginRegistry, build_plugin_manager
from crm2_core.settings import Settings
from crm2_hookspecs import PluginManifest, hookimpl, hookspec


def plain(name: str, *depends: str, requires_core: str = ">=0.1,<1") -> Any:
    class Plugin:
        manifest = PluginManifest(
            name=name, title=name.title(), depends=depends, requires_core=requires_core
        )

    return Plugin()


def builtins() -> list[str]:
    """The default plugins, always enabled and always first."""
    from crm2_core.plugins.discovery import discover_builtin

    return [p.name for p in discover_builtin()]


def build(plugins: str, *extra: object, **kwargs: Any) -> PluginRegistry:
    settings = Settings(_env_file=None, plugins=plugins)  # type: ignore[call-arg]
    return build_plugin_manager(settings, extra_plugins=extra, **kwargs)


def test_dependencies_of_an_enabled_plugin_are_enabled_first() -> None:
    registry = build("bravo", plain("alpha"), plain("bravo", "alpha"))

    assert registry.names == [*builtins(), "alpha", "bravo"]


def test_plugins_not_in_the_allow_list_stay_disabled() -> None:
    registry = build("alpha", plain("alpha"), plain("bravo"))

    assert registry.is_enabled("alpha")
    assert not registry.is_enabled("bravo")
    assert {s.name: s.status for s in registry.statuses()}["bravo"] == "disabled"


def test_diamond_dependencies_are_ordered_dependencies_first() -> None:
    # Alphabetical order is the opposite of dependency order here.
    registry = build(
        "delta",
        plain("delta", "bravo", "charlie"),
        plain("charlie", "zulu"),
        plain("bravo", "zulu"),
        plain("zulu"),
    )

    assert registry.names == [*builtins(), "zulu", "bravo", "charlie", "delta"]


def test_dependency_cycle_is_refused_naming_the_cycle() -> None:
    with pytest.raises(ConfigurationError) as error:
        build(
            "alpha", plain("alpha", "bravo"), plain("bravo", "charlie"), plain("charlie", "alpha")
        )

    assert "dependency cycle: alpha -> bravo -> charlie -> alpha" in str(error.value)


def test_missing_dependency_names_the_plugin_and_the_fix() -> None:
    with pytest.raises(ConfigurationError) as error:
        build("invoicing", plain("invoicing", "ledger"))

    assert str(error.value) == (
        "invoicing depends on ledger, which is not installed: pip install crm2-ledger "
        "or remove invoicing from CRM2_PLUGINS"
    )


def test_unknown_name_in_crm2_plugins_is_refused() -> None:
    with pytest.raises(ConfigurationError) as error:
        build("alpha,nonexistent", plain("alpha"))

    message = str(error.value)
    assert message.startswith("CRM2_PLUGINS names 'nonexistent', which is not installed")
    assert "pip install crm2-nonexistent or remove nonexistent from CRM2_PLUGINS" in message


def test_unsatisfied_requires_core_is_refused() -> None:
    with pytest.raises(ConfigurationError) as error:
        build("future", plain("future", requires_core=">=99"))

    message = str(error.value)
    assert message.startswith("future ")
    assert "requires crm2-core >=99" in message
    assert "remove future from CRM2_PLUGINS" in message


class RetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_RETRIER_")

    attempts: int = 3


class WrongPrefixSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIER_")

    attempts: int = 3


def with_settings(name: str, settings: type) -> Any:
    class Plugin:
        manifest = PluginManifest(name=name, title=name, settings=settings)

    return Plugin()


def test_plugin_settings_are_read_from_their_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM2_RETRIER_ATTEMPTS", "7")

    registry = build("retrier", with_settings("retrier", RetrySettings))

    assert registry.settings_for("retrier").attempts == 7


def test_invalid_plugin_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM2_RETRIER_ATTEMPTS", "abc")

    with pytest.raises(ConfigurationError) as error:
        build("retrier", with_settings("retrier", RetrySettings))

    message = str(error.value)
    assert message.startswith("retrier settings are invalid")
    assert "CRM2_RETRIER_ATTEMPTS" in message


def test_settings_model_with_the_wrong_env_prefix_is_refused() -> None:
    with pytest.raises(ConfigurationError) as error:
        build("retrier", with_settings("retrier", WrongPrefixSettings))

    message = str(error.value)
    assert "env_prefix 'RETRIER_'" in message
    assert "env_prefix='CRM2_RETRIER_'" in message


class Misspelt:
    manifest = PluginManifest(name="typo", title="Typo")

    @hookimpl
    def crm2_routrs(self) -> list[object]:
        return []


def test_misspelt_hookimpl_is_refused_by_check_pending() -> None:
    with pytest.raises(ConfigurationError) as error:
        build("typo", Misspelt())

    message = str(error.value)
    assert message.startswith(
        "typo implements crm2_routrs, which no hookspec defines: did you mean crm2_routers?"
    )
    assert '"Hooks" in the crm2 plugin documentation' in message
    assert "\n" not in message and "docs/" not in message


class GreeterSpec:
    @hookspec
    def greeter_greetings(self, name: str) -> str:  # type: ignore[empty-body]
        """Return a greeting for ``name``."""


class Greeter:
    manifest = PluginManifest(name="greeter", title="Greeter", hookspecs=(GreeterSpec,))

    @hookimpl
    def greeter_greetings(self, name: str) -> str:
        return f"hello {name}"


class French:
    manifest = PluginManifest(name="french", title="French", depends=("greeter",))

    @hookimpl
    def greeter_greetings(self, name: str) -> str:
        return f"bonjour {name}"


def test_a_plugin_can_add_hookspecs_that_other_plugins_implement() -> None:
    registry = build("french", Greeter(), French())

    results = list(registry.call("greeter_greetings", name="ada"))

    assert results == [("greeter", "hello ada"), ("french", "bonjour ada")]


def test_implementing_a_plugin_hook_without_its_plugin_is_refused() -> None:
    class Orphan:
        manifest = PluginManifest(name="orphan", title="Orphan")

        @hookimpl
        def greeter_greetings(self, name: str) -> str:
            return name

    with pytest.raises(ConfigurationError, match="orphan implements greeter_greetings"):
        build("orphan", Greeter(), Orphan())


class English:
    manifest = PluginManifest(name="english", title="English", depends=("greeter",))

    @hookimpl(tryfirst=True)
    def greeter_greetings(self, name: str) -> str:
        return f"hi {name}"


class Shouting:
    """A new-style wrapper: sees the other plugins' results and may change them in place."""

    manifest = PluginManifest(name="shouting", title="Shouting", depends=("greeter",))

    @hookimpl(wrapper=True)
    def greeter_greetings(self, name: str) -> Generator[None, list[str], list[str]]:
        results = yield
        return [greeting.upper() for greeting in results]


class Timing:
    """An old-style ``hookwrapper``: runs around the call, before and after every plugin."""

    manifest = PluginManifest(name="timing", title="Timing", depends=("greeter",))
    seen: ClassVar[list[str]] = []

    @hookimpl(hookwrapper=True)
    def greeter_greetings(self, name: str) -> Generator[None, Any, None]:
        Timing.seen.append(f"before {name}")
        outcome = yield
        Timing.seen.append(f"after {len(outcome.get_result())} results")


def test_tryfirst_runs_before_a_dependency_despite_the_dependency_order() -> None:
    registry = build("english,french", Greeter(), French(), English())

    assert registry.call("greeter_greetings", name="ada") == [
        ("english", "hi ada"),
        ("greeter", "hello ada"),
        ("french", "bonjour ada"),
    ]


def test_tryfirst_keeps_its_place_when_the_order_is_reversed() -> None:
    registry = build("english,french", Greeter(), French(), English())

    assert [name for name, _ in registry.call("greeter_greetings", reverse=True, name="ada")] == [
        "english",
        "french",
        "greeter",
    ]


def test_trylast_of_a_dependency_runs_after_its_dependents() -> None:
    class Last:
        manifest = PluginManifest(name="last", title="Last", hookspecs=(GreeterSpec,))

        @hookimpl(trylast=True)
        def greeter_greetings(self, name: str) -> str:
            return f"bye {name}"

    class After:
        manifest = PluginManifest(name="after", title="After", depends=("last",))

        @hookimpl
        def greeter_greetings(self, name: str) -> str:
            return f"yo {name}"

    registry = build("after", Last(), After())

    assert registry.call("greeter_greetings", name="ada") == [
        ("after", "yo ada"),
        ("last", "bye ada"),
    ]


def test_a_wrapper_changes_the_results_and_each_keeps_its_plugin() -> None:
    registry = build("shouting,french", Greeter(), French(), Shouting())

    assert registry.call("greeter_greetings", name="ada") == [
        ("greeter", "HELLO ADA"),
        ("french", "BONJOUR ADA"),
    ]


def test_an_old_style_hookwrapper_runs_around_the_call() -> None:
    Timing.seen.clear()
    registry = build("timing,french", Greeter(), French(), Timing())

    registry.call("greeter_greetings", name="ada")
    registry.call("greeter_greetings", reverse=True, name="bob")

    assert Timing.seen == ["before ada", "after 2 results", "before bob", "after 2 results"]


def test_a_wrapper_that_drops_results_is_refused() -> None:
    class Dropping:
        manifest = PluginManifest(name="dropping", title="Dropping", depends=("greeter",))

        @hookimpl(wrapper=True)
        def greeter_greetings(self, name: str) -> Generator[None, list[str], list[str]]:
            results = yield
            return results[:1]

    registry = build("dropping,french", Greeter(), French(), Dropping())

    with pytest.raises(RuntimeError, match="wrapper of greeter_greetings added or removed"):
        registry.call("greeter_greetings", name="ada")


def test_firstresult_hooks_go_through_first() -> None:
    registry = build("")

    with pytest.raises(TypeError, match="firstresult"):
        registry.call("crm2_authenticate", headers={}, context=None)
    assert (
        registry.first(
            "crm2_resolve_entity", kind="x.y", id="1", principal=None, context=None, session=None
        )
        is None
    )


async def test_a_failing_awaitable_closes_the_later_plugins_coroutines() -> None:
    """``acall`` awaits each plugin's coroutine in turn: when one raises (a start-up check
    that stops the app), the later ones never run, and are closed rather than left to
    warn "coroutine … was never awaited"."""
    later: list[Any] = []

    class Failing:
        manifest = PluginManifest(name="failing", title="Failing", hookspecs=(GreeterSpec,))

        @hookimpl
        def greeter_greetings(self, name: str) -> Any:
            async def fail() -> None:
                raise ConfigurationError(f"no greeting for {name}")

            return fail()

    class Later:
        manifest = PluginManifest(name="later", title="Later", depends=("failing",))

        @hookimpl
        def greeter_greetings(self, name: str) -> Any:
            async def greet() -> None:
                raise AssertionError("runs after a failed start")

            later.append(greet())
            return later[-1]

    registry = build("later", Failing(), Later())
    with pytest.raises(ConfigurationError, match="no greeting for ada"):
        await registry.acall("greeter_greetings", name="ada")
    (coroutine,) = later
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


def test_a_plugin_raising_closes_the_coroutines_returned_before_it() -> None:
    """A start-up hook that raises at once (a configuration check) stops the call: the
    coroutines earlier plugins returned will never be awaited, and are closed."""
    earlier: list[Any] = []

    class Starting:
        manifest = PluginManifest(name="starting", title="Starting", hookspecs=(GreeterSpec,))

        @hookimpl
        def greeter_greetings(self, name: str) -> Any:
            async def greet() -> None:
                raise AssertionError("runs after a failed start")

            earlier.append(greet())
            return earlier[-1]

    class Refusing:
        manifest = PluginManifest(name="refusing", title="Refusing", depends=("starting",))

        @hookimpl
        def greeter_greetings(self, name: str) -> Any:
            raise ConfigurationError(f"no greeting for {name}")

    registry = build("refusing", Starting(), Refusing())
    with pytest.raises(ConfigurationError, match="no greeting for ada"):
        registry.call("greeter_greetings", name="ada")
    (coroutine,) = earlier
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
