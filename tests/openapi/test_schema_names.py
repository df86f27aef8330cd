"""Every schema of /openapi.json (every installed plugin) has its own component name.

When two distinct models share a class name (payments, tasks and notifications each had a
``RulePublic``), pydantic keeps both by qualifying the components with their module
(``crm2_payments__schemas__admin__RulePublic``) and numbering generics over them
(``…Page_RulePublic___2``): the console's generated TypeScript client then has no
``RulePublic`` at all, and a view naming it finds nothing. So such a clash fails here,
naming the class and its modules: rename one of the classes (``CommissionRulePublic``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from pydantic import BaseModel, Field

import crm2_core.cli.openapi  # noqa: F401  (registers the command)
from crm2_core.cli.main import cli


def shared_names(document: dict[str, Any]) -> dict[str, list[str]]:
    """``{title: [component, …]}`` of the components pydantic had to qualify to keep apart."""
    clashes: dict[str, list[str]] = defaultdict(list)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if "__" in name:  # a module-qualified (or numbered) name: the short one was taken
            clashes[str(schema.get("title", name))].append(name)
    return {title: sorted(names) for title, names in sorted(clashes.items())}


def _model(module: str, **fields: type) -> type[BaseModel]:
    annotations = dict(fields)
    return type("Thing", (BaseModel,), {"__module__": module, "__annotations__": annotations})


def test_the_check_sees_two_models_of_one_name() -> None:
    """The check itself: two ``Thing`` models of two modules behind two routes are caught."""
    app = FastAPI()
    first, second = _model("crm2_a.schemas", a=int), _model("crm2_b.schemas", b=str)

    @app.get("/a", response_model=first)
    def get_a() -> Any: ...

    @app.get("/b", response_model=second)
    def get_b() -> Any: ...

    clashes = shared_names(app.openapi())
    assert list(clashes) == ["Thing"]
    assert clashes["Thing"] == ["crm2_a__schemas__Thing", "crm2_b__schemas__Thing"]


def _all_plugins_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``crm2 openapi --all-plugins`` (what the console's client is generated from): every
    installed plugin, whatever CRM2_PLUGINS says."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    runner = CliRunner(
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'names.db'}",
            "CRM2_PLUGINS": "console",
            "CRM2_ENV": "development",
        }
    )
    out = tmp_path / "openapi.json"
    result = runner.invoke(cli, ["openapi", "--all-plugins", "--output", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    document: dict[str, Any] = json.loads(out.read_text())
    wanted = {"/api/v1/console/views", "/api/v1/deals/deals", "/api/v1/auth/login"}
    assert wanted <= set(document["paths"])
    return document


def test_every_component_name_of_every_installed_plugin_is_unique(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No two schemas of one name in the document the console's client is generated from."""
    assert shared_names(_all_plugins_document(tmp_path, monkeypatch)) == {}


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_unicode_digits_do_not_pass_a_digit_pattern() -> None:
    """Why the check below: pydantic's (and Python's) ``\\d`` is any Unicode digit."""

    class Hours(BaseModel):
        at: Annotated[str, Field(pattern=r"^\d\d:\d\d$")]

    assert Hours(at="\uff11\uff12:\uff13\uff10").at == "\uff11\uff12:\uff13\uff10"


def test_no_pattern_of_any_installed_plugin_uses_a_unicode_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``\\d`` and ``\\w`` mean ASCII in the document (JSON Schema's ECMA-262 regexes)
    but any Unicode digit or letter to the server's validation: full-width "12:30"
    (U+FF11 U+FF12 ...) passed a ``^\\d\\d:\\d\\d$`` field as a time, full-width "12" an
    amount. Spell them ``[0-9]`` and ``[A-Za-z0-9_]``: the server checks what the document
    says."""
    document = _all_plugins_document(tmp_path, monkeypatch)
    unicode_classes = [p for p in _patterns(document) if "\\d" in p or "\\w" in p]
    assert unicode_classes == []
