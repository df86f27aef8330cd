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
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from pydantic import BaseModel

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


def test_every_component_name_of_every_installed_plugin_is_unique(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``crm2 openapi --all-plugins`` (what the console's client is generated from): every
    installed plugin, whatever CRM2_PLUGINS says, and no two schemas of one name."""
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
    document = json.loads(out.read_text())
    wanted = {"/api/v1/console/views", "/api/v1/deals/deals", "/api/v1/auth/login"}
    assert wanted <= set(document["paths"])
    assert shared_names(document) == {}
