"""An operator's mistakes (a bad setting, path, port or revision) are one line and exit 1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crm2_core.cli import openapi, output, serve  # noqa: F401  (openapi, serve: commands)
from crm2_core.cli.main import cli
from crm2_core.testing.databases import TestDatabase

CRM2 = str(Path(sys.executable).with_name("crm2"))


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setattr(output.console(), "width", 200)
    return CliRunner(
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "CRM2_PLUGINS": "",
            "CRM2_ENV": "development",
            "COLUMNS": "200",
        }
    )


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(cli, list(args), env=env)


def one_line_error(result: Result) -> str:
    """The one ``Error: …`` line of a failed command (no traceback, exit code 1)."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


def crm2(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env.update(
        {
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}",
            "CRM2_ENV": "development",
            "COLUMNS": "200",
            **extra,
        }
    )
    return subprocess.run(
        [CRM2, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


# -- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CRM2_ENV", "prod", "CRM2_ENV: Input should be 'development', 'test' or 'production'"),
        ("CRM2_PAGE_MAX_LIMIT", "abc", "CRM2_PAGE_MAX_LIMIT: Input should be a valid integer"),
        ("CRM2_PAGE_MAX_LIMIT", "9" * 30, "CRM2_PAGE_MAX_LIMIT: Input should be less than"),
        ("CRM2_BROKER_URL", "amqp:/x", "CRM2_BROKER_URL: Value error, must start with memory://"),
        ("CRM2_LOG_LEVEL", "LOUD", "CRM2_LOG_LEVEL: Value error, must be DEBUG"),
    ],
)
@pytest.mark.parametrize(
    "command", [["migrate"], ["migrate", "current"], ["plugins", "list"], ["serve"]]
)
def test_a_bad_core_setting_is_one_line_naming_it(
    runner: CliRunner, command: list[str], variable: str, value: str, says: str
) -> None:
    line = one_line_error(run(runner, *command, env={variable: value}))

    assert line.startswith(f"Error: invalid settings: {says}"), line
    assert line.endswith("fix these environment variables (see env.example)")


def test_a_bad_setting_does_not_print_its_value(runner: CliRunner) -> None:
    line = one_line_error(run(runner, "migrate", env={"CRM2_BROKER_URL": "amqp:/u:hunter2@h"}))

    assert "hunter2" not in line


def test_openapi_reports_a_bad_setting_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    line = one_line_error(
        run(runner, "openapi", "-o", str(tmp_path / "o.json"), env={"CRM2_ENV": "x"})
    )

    assert "CRM2_ENV" in line


def test_a_plugin_command_under_a_bad_setting_says_what_is_wrong(tmp_path: Path) -> None:
    result = crm2(tmp_path, "backup", "list", CRM2_ENV="prod")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "No such command" not in result.stderr
    assert "CRM2_ENV: Input should be" in result.stderr


# -- serve --------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["70000", "9" * 25, "0", "-1"])
def test_serve_refuses_a_port_outside_1_to_65535(runner: CliRunner, port: str) -> None:
    """70000 was bound as 4464 (the OS takes it modulo 65536) while the banner said 70000."""
    result = run(runner, "serve", "--port", port)

    assert result.exit_code == 2, (result.output, result.exception)
    assert "Invalid value for '--port'" in result.output
    assert "1<=x<=65535" in result.output


# -- migrations ---------------------------------------------------------------------------


@pytest.mark.parametrize("revision", ["nosuch", "-99", "+1"])
def test_downgrade_to_a_revision_alembic_cannot_find_is_one_line(
    runner: CliRunner, revision: str
) -> None:
    assert run(runner, "migrate").exit_code == 0

    line = one_line_error(run(runner, "migrate", "--plugin", "auth", "downgrade", "--", revision))

    assert line.startswith("Error: auth migrations: "), line
    assert "didn't produce" in line or "Can't locate revision" in line
    current = run(runner, "migrate", "current")
    assert "pending" not in current.output, current.output


# -- files ------------------------------------------------------------------------------


def test_openapi_into_a_missing_folder_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "openapi.json"

    line = one_line_error(run(runner, "openapi", "-o", str(target)))

    assert line == f"Error: cannot write {target}: No such file or directory"


# -- the database -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "foo", "", "postgresql+psycopg2://h/db"])
def test_a_database_url_crm2_cannot_use_is_refused_as_a_setting(
    runner: CliRunner, url: str
) -> None:
    """mysql:// was a ModuleNotFoundError traceback, "foo" an ArgumentError one."""
    line = one_line_error(run(runner, "migrate", env={"CRM2_DATABASE_URL": url}))

    assert line.startswith("Error: invalid settings: CRM2_DATABASE_URL: Value error, must be "), (
        line
    )


@pytest.mark.parametrize("command", [["migrate"], ["migrate", "current"], ["seed", "demo"]])
def test_a_sqlite_file_in_a_missing_folder_is_one_line(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "no" / "such" / "crm2.db"

    result = run(runner, *command, env={"CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{path}"})

    line = one_line_error(result)
    assert line.startswith(f"Error: CRM2_DATABASE_URL: the folder of the SQLite file {path} "), line
    assert not path.parent.exists()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://crm2:pw-kept-back@127.0.0.1:1/crm2", "Connect call failed"),
        ("postgresql://crm2:pw-kept-back@host.invalid/crm2", "Name or service not known"),
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["migrate", "current"], ["seed", "demo"]])
def test_a_database_that_does_not_answer_is_one_line(
    runner: CliRunner, command: list[str], url: str, says: str
) -> None:
    line = one_line_error(run(runner, *command, env={"CRM2_DATABASE_URL": url}))

    assert line.startswith("Error: cannot connect to the database postgresql+asyncpg://crm2:***@")
    assert says in line
    assert "pw-kept-back" not in line
    assert line.endswith("check CRM2_DATABASE_URL")


def test_a_postgresql_database_that_does_not_exist_is_one_line(
    runner: CliRunner, crm2_database: TestDatabase
) -> None:
    if crm2_database.backend != "postgresql":
        pytest.skip("a PostgreSQL server to ask for a missing database")
    missing = f"crm2_opsreview_{uuid.uuid4().hex[:12]}"  # asked for, never created
    url = make_url(crm2_database.url).set(database=missing)

    result = run(runner, "migrate", env={"CRM2_DATABASE_URL": url.render_as_string(False)})

    line = one_line_error(result)
    assert line.startswith("Error: cannot connect to the database postgresql+asyncpg://"), line
    assert f'database "{missing}" does not exist' in line


def count_rows(url: str, table: str) -> int:
    async def count() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


@pytest.mark.parametrize("plugins", ["deals", "deals,documents"])
def test_downgrade_to_base_after_seed_demo_empties_the_database(
    runner: CliRunner, crm2_fresh_database: TestDatabase, plugins: str
) -> None:
    """docs/operators.md: `crm2 migrate downgrade` (everything to base) once data exists.

    The shipped pipelines, lost reasons and document kinds were deleted while the demo's
    deals and documents still pointed at them: a foreign-key traceback, half downgraded.
    """
    env = {"CRM2_DATABASE_URL": crm2_fresh_database.url, "CRM2_PLUGINS": plugins}
    assert run(runner, "migrate", env=env).exit_code == 0
    seeded = run(runner, "seed", "demo", env=env)
    assert seeded.exit_code == 0, seeded.output

    result = run(runner, "migrate", "downgrade", env=env)

    assert result.exit_code == 0, (result.output, result.exception)
    current = run(runner, "migrate", "current", env=env)
    assert "up to date" not in current.output, current.output
    # and up again, the shipped rows back once each
    assert run(runner, "migrate", env=env).exit_code == 0
    again = run(runner, "migrate", "current", env=env)
    assert "pending" not in again.output, again.output


def test_one_step_down_and_up_keeps_the_shipped_rows_deals_use(
    runner: CliRunner, crm2_fresh_database: TestDatabase
) -> None:
    env = {"CRM2_DATABASE_URL": crm2_fresh_database.url, "CRM2_PLUGINS": "deals,documents"}
    assert run(runner, "migrate", env=env).exit_code == 0
    assert run(runner, "seed", "demo", env=env).exit_code == 0

    assert count_rows(crm2_fresh_database.url, "documents_document") > 0  # kinds in use
    for plugin, steps in (("deals", "-1"), ("documents", "-2")):
        result = run(runner, "migrate", "--plugin", plugin, "downgrade", "--", steps, env=env)
        assert result.exit_code == 0, (result.output, result.exception)
    result = run(runner, "migrate", env=env)

    assert result.exit_code == 0, (result.output, result.exception)
    assert "pending" not in run(runner, "migrate", "current", env=env).output


# -- seed sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugins", "variable", "value", "minimum"),
    [
        ("deals", "CRM2_SEED_CLIENTS", "abc", 1),
        ("deals", "CRM2_SEED_CLIENTS", "0", 1),  # was an IndexError from random.choice
        ("deals", "CRM2_SEED_DEALS", "9" * 30, 0),
        ("tasks", "CRM2_SEED_TASKS", "-1", 0),
        ("payments", "CRM2_SEED_PAYMENTS", "1.5", 0),
        ("notifications", "CRM2_SEED_NOTIFICATIONS", "ten", 0),
    ],
)
def test_a_bad_seed_size_is_one_line_naming_it(
    runner: CliRunner, plugins: str, variable: str, value: str, minimum: int
) -> None:
    env = {"CRM2_PLUGINS": plugins, "CRM2_SEED_CLIENTS": "1", "CRM2_SEED_DEALS": "0"}
    assert run(runner, "migrate", env=env).exit_code == 0

    line = one_line_error(run(runner, "seed", "load", env={**env, variable: value}))

    assert line.startswith(f"Error: {variable} must be a whole number from {minimum} to "), line


# -- workers ------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_worker_on_the_in_process_broker_is_one_line_naming_the_fix(
    runner: CliRunner, processes: str
) -> None:
    """With memory:// (the default) the handlers run inside crm2 serve: a worker has no
    queue to consume, whatever its --processes."""
    from crm2_core.cli import events  # noqa: F401  (the worker command)

    env = {"CRM2_BROKER_URL": "memory://", "CRM2_PLUGINS": "notifications"}

    line = one_line_error(run(runner, "worker", "--processes", processes, env=env))

    assert line == (
        "Error: crm2 worker needs CRM2_BROKER_URL=amqp://… or redis://…; with memory:// the "
        "handlers already run inside crm2 serve"
    )
