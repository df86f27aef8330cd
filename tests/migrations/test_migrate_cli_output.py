"""What ``crm2 migrate`` and ``crm2 makemigrations`` print for a plugin's revisions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from branch_plugin import BranchPlugin
from click.testing import CliRunner, Result
from sqlmodel import Field, SQLModel

from crm2_core import bootstrap
from crm2_core.cli import commands, output  # noqa: F401  (commands: registers them)
from crm2_core.cli.main import cli
from crm2_core.testing.databases import TestDatabase

PLUGIN = "cliout"


class CliOutThing(SQLModel, table=True):
    __tablename__ = "cliout_thing"
    __table_args__ = {"info": {"plugin": PLUGIN}}

    id: int | None = Field(default=None, primary_key=True)


FIRST = '''"""create thing"""
from alembic import op
import sqlalchemy as sa

revision: str = "c11001"
down_revision: str | None = None
branch_labels = ("cliout",)
depends_on = None


def upgrade() -> None:
    op.create_table("cliout_thing", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("INSERT INTO cliout_thing (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("cliout_thing")
'''

# What `points: int = Field(default=0)` autogenerates: NOT NULL, no server default.
SECOND = '''"""add points"""
from alembic import op
import sqlalchemy as sa

revision: str = "c11002"
down_revision: str | None = "c11001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cliout_thing", sa.Column("points", sa.Integer(), nullable=False))


def downgrade() -> None:
    op.drop_column("cliout_thing", "points")
'''


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setattr(output.console(), "width", 60)  # narrower than the path
    return CliRunner(
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "CRM2_PLUGINS": PLUGIN,
            "CRM2_ENV": "development",
            "COLUMNS": "60",
        }
    )


def with_plugin(monkeypatch: pytest.MonkeyPatch, plugin: BranchPlugin) -> None:
    """The commands' context holds ``plugin`` as if it were installed."""
    build = bootstrap.build_app_context

    def build_with_plugin(settings: Any, **kwargs: Any) -> Any:
        return build(settings, extra_plugins=(plugin,), **kwargs)

    monkeypatch.setattr(bootstrap, "build_app_context", build_with_plugin)


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(cli, list(args), env=env)


def one_error_line(result: Result) -> str:
    """A failed ``crm2 migrate``: exit 1 and one line, no traceback."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def assert_pending_and_traceback_at_debug(
    runner: CliRunner, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The failed revision is still pending; its traceback is logged at DEBUG only
    (CRM2_LOG_LEVEL=DEBUG shows it)."""
    current = run(runner, "migrate", "current", env=env)
    assert "pending" in current.output, current.output
    with caplog.at_level(logging.DEBUG, logger="crm2_core.migrate"):
        assert run(runner, "migrate", env=env).exit_code == 1
    assert [r.exc_info is not None for r in caplog.records if r.levelno == logging.DEBUG] == [True]


def test_a_revision_the_database_refuses_is_one_line_naming_it(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    crm2_fresh_database: TestDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "c11001_create_thing.py").write_text(FIRST)
    with_plugin(monkeypatch, BranchPlugin(PLUGIN, versions, [CliOutThing]))
    env = {"CRM2_DATABASE_URL": crm2_fresh_database.url}
    first = run(runner, "migrate", env=env)
    assert first.exit_code == 0, (first.output, first.exception)
    (versions / "c11002_add_points.py").write_text(SECOND)

    line = one_error_line(run(runner, "migrate", env=env))

    assert line.startswith("Error: cliout migrations: revision c11002 "), line
    assert "points" in line.lower() or "not null" in line.lower(), line
    assert_pending_and_traceback_at_debug(runner, env, caplog)


# A revision that breaks in Python, not in the database: after a statement that worked.
BROKEN = {
    "raises": (
        'op.execute("INSERT INTO cliout_thing (id) VALUES (2)")\n'
        '    raise RuntimeError("no such lookup table")',
        "RuntimeError: no such lookup table",
    ),
    "misspelt": ("op.add_colum('cliout_thing', sa.Column('x', sa.Integer()))", "add_colum"),
    "syntax": ("op.execute('INSERT INTO cliout_thing (id) VALUES (2)'", "SyntaxError"),
}


@pytest.mark.parametrize("case", BROKEN.keys())
def test_a_revision_failing_in_python_is_one_line_naming_it(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    crm2_fresh_database: TestDatabase,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    """A NameError, a misspelt ``op`` call or a syntax error printed a traceback; a
    database's refusal was already one line: both say the plugin, revision and reason."""
    body, reason = BROKEN[case]
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "c11001_create_thing.py").write_text(FIRST)
    with_plugin(monkeypatch, BranchPlugin(PLUGIN, versions, [CliOutThing]))
    env = {"CRM2_DATABASE_URL": crm2_fresh_database.url}
    assert run(runner, "migrate", env=env).exit_code == 0
    broken = SECOND.replace(
        'op.add_column("cliout_thing", sa.Column("points", sa.Integer(), nullable=False))', body
    )
    (versions / "c11002_broken.py").write_text(broken)

    line = one_error_line(run(runner, "migrate", env=env))

    assert line.startswith("Error: cliout migrations: revision c11002 "), line
    assert "c11002_broken.py" in line and reason in line, line
    assert "rolled back" in line, line
    assert_pending_and_traceback_at_debug(runner, env, caplog)


def test_makemigrations_prints_one_created_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    versions = tmp_path / "a-rather-long-folder-name-for-the-path" / "versions"
    versions.mkdir(parents=True)
    with_plugin(monkeypatch, BranchPlugin(PLUGIN, versions, [CliOutThing]))

    result = run(runner, "makemigrations", PLUGIN, "-m", "create thing")

    assert result.exit_code == 0, (result.output, result.exception)
    created = list(versions.glob("*.py"))
    assert len(created) == 1
    assert result.output == f"created {created[0]}\n"
