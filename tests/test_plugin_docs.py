"""The plugin author's docs answer with examples that run.

- docs/plugins/recipes.md: the money section's code blocks are executed; every
  test a section names (``path::test``, or "the scaffold's ``test_x``") exists.
- docs/plugins/api-policy.md: every name it lists as public is in ``crm2_core.api``.
- docs/plugins/tutorial.md: run command by command by tests/test_plugins_new.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import crm2_core.api

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins"
SCAFFOLD_TESTS = ROOT / "crm2_core" / "scaffold" / "template" / "tests" / "test_NAME.py.tmpl"


def _section(text: str, number: int) -> str:
    start = re.search(rf"^## {number}\. ", text, re.MULTILINE)
    assert start is not None, f"recipes.md has no section {number}"
    end = re.search(r"^## ", text[start.end() :], re.MULTILINE)
    return text[start.start() : start.end() + end.start() if end else None]


def test_recipes_answer_every_question_of_issue_19() -> None:
    text = (DOCS / "recipes.md").read_text(encoding="utf-8")
    titles = re.findall(r"^## (\d)\. (.+)$", text, re.MULTILINE)
    assert [int(n) for n, _ in titles] == list(range(1, 8)), titles


def test_the_money_examples_run() -> None:
    section = _section((DOCS / "recipes.md").read_text(encoding="utf-8"), 1)
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, "recipes.md#money", "exec"), {})


def test_every_test_the_recipes_name_exists() -> None:
    text = (DOCS / "recipes.md").read_text(encoding="utf-8")
    named = re.findall(r"`([\w/.-]+\.py)::(\w+)`", text)
    files = re.findall(r"`([\w/.-]+/tests/[\w.-]+\.py)`", text)
    scaffold = re.findall(r"the scaffold's `(test_\w+)`", text)
    assert len(named) >= 8 and scaffold
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (ROOT / path).is_file()
        or not re.search(rf"def {name}\(", (ROOT / path).read_text(encoding="utf-8"))
    ]
    missing += [path for path in files if not (ROOT / path).is_file()]
    template = SCAFFOLD_TESTS.read_text(encoding="utf-8")
    missing += [f"scaffold::{name}" for name in scaffold if f"def {name}(" not in template]
    assert not missing, f"recipes.md names tests that do not exist: {missing}"


def test_the_public_api_policy_lists_only_what_crm2_core_api_exports() -> None:
    text = (DOCS / "api-policy.md").read_text(encoding="utf-8")
    text = text[text.index("The names of `crm2_core.api`") : text.index("## Versions")]
    listed = set(re.findall(r"^\| [^|]+ \| (.+) \|$", text, re.MULTILINE))
    names = {n for row in listed for n in re.findall(r"`(\w+)`", row)}
    assert names, "api-policy.md lists no names"
    unknown = sorted(names - set(crm2_core.api.__all__))
    assert not unknown, f"api-policy.md lists names crm2_core.api does not export: {unknown}"
    unlisted = sorted(set(crm2_core.api.__all__) - names)
    assert not unlisted, f"crm2_core.api exports names api-policy.md does not list: {unlisted}"
