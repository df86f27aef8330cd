"""The context's typed service accessor: what crm2_configure provides, hooks read back typed."""

from __future__ import annotations

from typing import Any

import pytest

from crm2_core.context import EVENTS, AppContext, ServiceKey
from crm2_core.errors import ConfigurationError


class Greeter:
    def greet(self) -> str:
        return "hello"


def bare_context() -> AppContext:
    return AppContext(settings=Any, plugins=Any, engine=Any, session_factory=Any)  # type: ignore[arg-type]


def test_a_service_is_read_back_by_its_class() -> None:
    context = bare_context()
    greeter = Greeter()

    context.provide(Greeter, greeter)

    assert context.get(Greeter) is greeter
    assert context.find(Greeter) is greeter


def test_a_missing_service_names_itself_and_the_likely_cause() -> None:
    context = bare_context()

    with pytest.raises(LookupError, match=r"no Greeter in this application: the plugin"):
        context.get(Greeter)
    assert context.find(Greeter) is None
    with pytest.raises(LookupError, match="no events in this application"):
        _ = context.events


def test_providing_the_same_service_twice_is_a_configuration_error() -> None:
    context = bare_context()
    context.provide(Greeter, Greeter())

    with pytest.raises(ConfigurationError, match="Greeter is provided twice"):
        context.provide(Greeter, Greeter())


def test_a_service_of_the_wrong_class_is_refused() -> None:
    context = bare_context()

    with pytest.raises(TypeError, match="is not a Greeter"):
        context.provide(Greeter, object())  # type: ignore[arg-type]


def test_keys_are_distinct_even_with_one_name() -> None:
    context = bare_context()
    other: ServiceKey[str] = ServiceKey("events")

    context.provide(other, "not the bus")

    assert context.get(other) == "not the bus"
    assert context.find(EVENTS) is None


async def test_the_running_app_exposes_the_core_services_typed(crm2: Any) -> None:
    context: AppContext = crm2.context
    from crm2_core.auth.service import AuthService
    from crm2_core.events.bus import EventBus
    from crm2_core.scheduler import Scheduler
    from crm2_core.streams.service import Streams

    assert isinstance(context.auth, AuthService)
    assert isinstance(context.events, EventBus)
    assert isinstance(context.scheduler, Scheduler)
    assert isinstance(context.streams, Streams)
    assert context.authenticator.from_scope is not None


def test_no_code_looks_for_the_old_string_keyed_state() -> None:
    """``getattr(context, "state", …)`` would silently find nothing: services are typed now."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = []
    for folder in ("crm2_core", "plugins", "examples"):
        for file in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr"
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value == "state"
                ):
                    found.append(f"{file.relative_to(root)}:{node.lineno}")
    assert not found, "use context.find(KEY) / context.get(Class) instead:\n" + "\n".join(found)
