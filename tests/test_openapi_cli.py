"""``crm2 openapi``: the API document without serving (the console's typed client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import crm2_core.cli.openapi  # noqa: F401  (registers the command)
from crm2_core.cli.main import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return CliRunner(
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "CRM2_PLUGINS": "console",
            "CRM2_ENV": "development",
        }
    )


def paths_of(runner: CliRunner, tmp_path: Path, *flags: str) -> set[str]:
    out = tmp_path / "openapi.json"
    result = runner.invoke(cli, ["openapi", "--output", str(out), *flags])
    assert result.exit_code == 0, (result.output, result.exception)
    return set(json.loads(out.read_text())["paths"])


def test_the_document_has_the_enabled_plugins(runner: CliRunner, tmp_path: Path) -> None:
    paths = paths_of(runner, tmp_path)
    assert "/api/v1/console/views" in paths
    assert "/api/v1/deals/deals" not in paths


# --all-plugins ignoring CRM2_PLUGINS is checked by tests/openapi/test_schema_names.py, on the
# one build of every plugin's document that it checks for clashing schema names.
