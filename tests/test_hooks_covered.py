"""Every hook of the contract is called by the core and implemented by at least one plugin.

A hookspec nobody calls is a promise the core does not keep; one nobody
implements is untested surface. Implementations are looked for in the core's
default plugins, every plugin this repository ships (plugins/*) and the hello
example; callers in ``crm2_core``'s source:
``registry.call/collect/acall/first/first_answer("crm2_x")`` or ``pm.hook.crm2_x``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from crm2_core.plugins import build_plugin_manager
from crm2_core.settings import Settings
from crm2_hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, Crm2Spec

ROOT = Path(__file__).resolve().parents[1]
CALLING_METHODS = {"call", "collect", "acall", "first", "first_answer"}
# Hooks specified ahead of their first user. Each entry names who adds it; the
# tests below fail once it is no longer pending, so the entry cannot outlive it.
PENDING_CALLERS: dict[str, str] = {
    # specified in the core's contract, but collected by the plugin that shows them
    "crm2_console_views": "the console plugin (plugins/console) collects them",
}
PENDING_IMPLEMENTATIONS: dict[str, str] = {
    # Extension points for plugins not written yet; until then only the test
    # plugins of tests/plugins and tests/events implement them.
    "crm2_authenticate": "an extra auth backend (none shipped; tests/plugins has one)",
    "crm2_check_permission": "a veto (none shipped; tests/plugins has one)",
}


def spec_hooks() -> set[str]:
    return {
        name
        for name, function in vars(Crm2Spec).items()
        if callable(function) and hasattr(function, f"{PROJECT_NAME}_spec")
    }


def called_hooks(package_dir: Path) -> set[str]:
    """Hook names the source calls: ``x.call("crm2_…")`` and friends, or ``x.hook.crm2_…``."""
    found: set[str] = set()
    for file in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CALLING_METHODS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "hook"
            ):
                found.add(node.attr)
    return found


def _hello_plugin() -> ModuleType:
    hello_root = str(ROOT / "examples" / "plugins" / "hello")
    if hello_root not in sys.path:
        sys.path.insert(0, hello_root)
    return importlib.import_module("crm2_hello.plugin")


def implemented_hooks() -> set[str]:
    """Hooks implemented by the core's default plugins, the shipped plugins and hello."""
    shipped = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    enabled = ",".join([*shipped, "hello"])
    settings = Settings(_env_file=None, plugins=enabled)  # type: ignore[call-arg]
    registry = build_plugin_manager(settings, extra_plugins=(_hello_plugin(),))
    assert {"deals", "hello"} <= set(registry.names)
    return {name for name in spec_hooks() if getattr(registry.pm.hook, name).get_hookimpls()}


def test_every_hookspec_has_a_caller_in_the_core() -> None:
    missing = spec_hooks() - called_hooks(ROOT / "crm2_core")

    assert missing == set(PENDING_CALLERS), (
        f"hooks nobody in crm2_core calls: {sorted(missing - set(PENDING_CALLERS))}; "
        f"listed as pending but called now (drop them from PENDING_CALLERS): "
        f"{sorted(set(PENDING_CALLERS) - missing)}"
    )


def test_every_hookspec_has_an_implementation_in_core_deals_or_hello() -> None:
    missing = spec_hooks() - implemented_hooks()

    assert missing == set(PENDING_IMPLEMENTATIONS), (
        f"hooks no plugin implements: {sorted(missing - set(PENDING_IMPLEMENTATIONS))}; "
        f"listed as pending but implemented now (drop them from PENDING_IMPLEMENTATIONS): "
        f"{sorted(set(PENDING_IMPLEMENTATIONS) - missing)}"
    )


def test_the_caller_search_sees_each_calling_form(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "registry.call('crm2_a', x=1)\n"
        "context.plugins.collect('crm2_b')\n"
        "await registry.acall('crm2_c', reverse=True)\n"
        "registry.first('crm2_d', kind='k')\n"
        "pm.hook.crm2_e(principal=p)\n"
        "registry.names\n"
    )

    assert called_hooks(tmp_path) == {"crm2_a", "crm2_b", "crm2_c", "crm2_d", "crm2_e"}
