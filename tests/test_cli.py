"""The ``crm2`` command line, run in-process with click's runner on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import crm2_core.cli.commands  # noqa: F401  (registers the core commands)
from crm2_core import __version__
from crm2_core import migrate as migrations
from crm2_core.cli import output
from crm2_core.cli.main import cli
from crm2_core.plugins import build_plugin_manager
from crm2_core.settings import Settings


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    # The console takes its width from COLUMNS when made: 80 in a pytest-xdist worker.
    monkeypatch.setattr(output.console(), "width", 200)
    return CliRunner(
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "CRM2_PLUGINS": "",
            "CRM2_ENV": "development",
            "COLUMNS": "200",  # rich tables wide enough not to wrap
        }
    )


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(cli, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table, as lists of cell texts."""
    rows = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def state_of(output: str, plugin: str) -> str:
    for row in table_rows(output):
        if row[0] == plugin:
            return row[-1]
    raise AssertionError(f"{plugin} not in:\n{output}")


def test_migrate_applies_every_branch(runner: CliRunner) -> None:
    output = ok(run(runner, "migrate"))

    assert "migrations applied: core, auth" in output


def test_migrate_current_shows_up_to_date_after_migrate(runner: CliRunner) -> None:
    ok(run(runner, "migrate"))

    output = ok(run(runner, "migrate", "current"))

    assert state_of(output, "core") == "up to date"
    assert state_of(output, "auth") == "up to date"


def test_migrate_current_shows_pending_before_migrate(runner: CliRunner) -> None:
    output = ok(run(runner, "migrate", "current"))

    assert state_of(output, "core") == "pending"
    assert state_of(output, "auth") == "pending"


def test_migrate_history_lists_each_branch(runner: CliRunner) -> None:
    registry = build_plugin_manager(Settings(_env_file=None, plugins=""))  # type: ignore[call-arg]

    output = ok(run(runner, "migrate", "history"))

    expected = [list(row) for row in migrations.history(registry)]
    assert table_rows(output) == expected
    assert [row[0] for row in expected][:1] == ["core"]
    assert "auth" in [row[0] for row in expected]


def test_migrate_downgrade_leaves_migrations_pending(runner: CliRunner) -> None:
    ok(run(runner, "migrate"))

    ok(run(runner, "migrate", "downgrade"))
    output = ok(run(runner, "migrate", "current"))

    assert state_of(output, "core") == "pending"
    assert state_of(output, "auth") == "pending"


def test_migrate_one_plugin(runner: CliRunner) -> None:
    output = ok(run(runner, "migrate", "--plugin", "core"))

    assert "migrations applied: core" in output
    current = ok(run(runner, "migrate", "current"))
    assert state_of(current, "core") == "up to date"
    assert state_of(current, "auth") == "pending"


def test_plugins_list_shows_the_builtin_plugins(runner: CliRunner) -> None:
    output = ok(run(runner, "plugins", "list"))

    rows = {row[0]: row for row in table_rows(output)}
    assert rows["core"][1:3] == [__version__, "yes"]
    assert rows["auth"][1:5] == [__version__, "yes", "core", "ok"]


@pytest.mark.parametrize("command", [["plugins", "list"], ["migrate"], ["migrate", "current"]])
def test_unknown_plugin_is_a_one_line_error(runner: CliRunner, command: list[str]) -> None:
    result = run(runner, *command, env={"CRM2_PLUGINS": "nonexistent"})

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    if command != ["plugins", "list"]:  # the list still prints its table first
        assert len(lines) == 1, result.output
    assert lines[-1].startswith("Error: CRM2_PLUGINS names 'nonexistent', which is not installed")


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["migrate", "current"], ["migrate", "history"], ["migrate", "downgrade"]],
)
def test_unknown_plugin_option_is_a_one_line_error(runner: CliRunner, command: list[str]) -> None:
    result = run(runner, command[0], "--plugin", "nope", *command[1:])

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: no enabled plugin 'nope' with migrations")
