"""docs/plugins/hooks.md and the hookspecs (the core's and plugins' own) stay in step."""

from __future__ import annotations

import ast
import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

from crm2_hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, Crm2Spec

HOOKS_MD = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "hooks.md"
HEADING = re.compile(r"^### (\S+)\s*$", re.MULTILINE)
# "## " or "### " only: a "# comment" line inside a code block is not a heading.
NEXT_HEADING = re.compile(r"^#{2,3} ", re.MULTILINE)


def _marked(spec: object) -> dict[str, object]:
    return {
        name: function
        for name, function in vars(spec).items()
        if callable(function) and hasattr(function, f"{PROJECT_NAME}_spec")
    }


def _plugin_specs() -> list[object]:
    """The ``manifest.hookspecs`` of every plugin installed from this repository."""
    specs: list[object] = []
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        manifest = getattr(entry.load(), "manifest", None)
        specs.extend(getattr(manifest, "hookspecs", ()))
    return specs


def _spec_hooks() -> dict[str, object]:
    """Every ``@hookspec`` function of ``Crm2Spec`` and of the plugins' own hookspecs."""
    found = _marked(Crm2Spec)
    for spec in _plugin_specs():
        found.update(_marked(spec))
    return found


def test_plugin_hookspecs_are_covered() -> None:
    assert {
        "crm2_documents_storage_backends",
        "crm2_notifications_channels",
        "crm2_backup_targets",
        "crm2_deals_validate_change",
        "crm2_tasks_validate_change",
    } <= set(_spec_hooks())


def _sections() -> dict[str, str]:
    """``{heading: text up to the next heading}`` for every ``###`` heading of hooks.md."""
    text = HOOKS_MD.read_text(encoding="utf-8")
    sections = {}
    for match in HEADING.finditer(text):
        following = NEXT_HEADING.search(text, match.end())
        sections[match.group(1)] = text[match.end() : following.start() if following else None]
    return sections


def _documented_parameters(name: str, section: str) -> list[str] | None:
    """Parameter names of ``def <name>(…)`` in the section's first python code block."""
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    if block is None:
        return None
    source = block.group(1).strip()
    if not source.endswith(":"):
        source += ":"
    tree = ast.parse(source + "\n    ...")
    function = tree.body[0]
    if not isinstance(function, ast.FunctionDef) or function.name != name:
        return None
    return [arg.arg for arg in function.args.args]


def test_hookspec_marker_finds_the_spec_hooks() -> None:
    assert len(_spec_hooks()) >= 10


def test_plugins_own_hookspecs_are_covered() -> None:
    assert "crm2_notifications_channels" in _spec_hooks()


def test_every_hook_has_a_heading_in_hooks_md() -> None:
    missing = sorted(set(_spec_hooks()) - set(_sections()))
    assert not missing, f"document these hooks in {HOOKS_MD.name} under '### <name>': {missing}"


def test_hooks_md_names_no_hook_that_does_not_exist() -> None:
    unknown = sorted(set(_sections()) - set(_spec_hooks()))
    assert not unknown, f"{HOOKS_MD.name} has sections for hooks Crm2Spec lacks: {unknown}"


def test_every_hookspec_has_a_docstring() -> None:
    bare = sorted(name for name, fn in _spec_hooks().items() if not inspect.getdoc(fn))
    assert not bare, f"give these hookspecs a docstring in spec.py: {bare}"


def test_hooks_md_shows_each_hooks_signature() -> None:
    sections = _sections()
    wrong = {}
    for name, function in _spec_hooks().items():
        if name not in sections:
            continue  # reported by the heading test
        expected = [p for p in inspect.signature(function).parameters if p != "self"]
        shown = _documented_parameters(name, sections[name])
        if shown != expected:
            wrong[name] = (shown, expected)
    assert not wrong, (
        "each section's first ```python block must be `def <hook>(<the spec's parameters>)`; "
        f"(shown, spec): {wrong}"
    )


def test_firstresult_hooks_say_so_in_hooks_md() -> None:
    sections = _sections()
    silent = sorted(
        name
        for name, function in _spec_hooks().items()
        if getattr(function, f"{PROJECT_NAME}_spec").get("firstresult")
        and "firstresult" not in sections.get(name, "")
    )
    assert not silent, f"say 'firstresult' in these sections of {HOOKS_MD.name}: {silent}"
