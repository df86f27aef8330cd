"""The plugin's migrations with only the core and backup, and ``crm2 backup run && crm2 backup
verify`` on that fresh database, through the command line as an operator runs them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from backup_kit import KEY
from click.testing import CliRunner
from crm2_backup import crypto
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from crm2_core.testing import TEST_JWT_SECRET, TestDatabase, build_cli
from crm2_core.testing.databases import create_postgres_database, drop_postgres_database


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backup_fresh_db" in metafunc.fixturenames:
        backends = [b.strip() for b in str(metafunc.config.getoption("--crm2-db")).split(",")]
        metafunc.parametrize("backup_fresh_db", [b for b in backends if b], indirect=True)


@pytest.fixture
def backup_fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    if request.param == "sqlite":
        yield TestDatabase("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'backup.db'}")
        return
    admin_url = str(request.config.getoption("--crm2-postgres-url"))
    database = create_postgres_database(admin_url, prefix="crm2_backup_mig")
    try:
        yield database
    finally:
        drop_postgres_database(admin_url, database)


def crm2(db: TestDatabase, folder: Path, *args: str, code: int = 0) -> str:
    env = {
        "CRM2_DATABASE_URL": db.url,
        "CRM2_PLUGINS": "backup",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_BACKUP_DIR": str(folder / "backups"),
        "CRM2_BACKUP_KEY": crypto.encode_key(KEY),
        "CRM2_BACKUP_TARGETS": "auto",
    }
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def inspect_db(db: TestDatabase, work: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(db.url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def backup_tables(db: TestDatabase) -> set[str]:
    names = inspect_db(db, lambda sync: inspect(sync).get_table_names())
    return {n for n in names if n.startswith("backup_")}


def test_upgrade_downgrade_upgrade_then_run_and_verify(
    backup_fresh_db: TestDatabase, tmp_path: Path
) -> None:
    crm2(backup_fresh_db, tmp_path, "migrate")
    created = backup_tables(backup_fresh_db)
    assert created == {"backup_set", "backup_artifact", "backup_run", "backup_drill"}
    crm2(backup_fresh_db, tmp_path, "migrate", "--plugin", "backup", "downgrade", "base")
    assert backup_tables(backup_fresh_db) == set()
    crm2(backup_fresh_db, tmp_path, "migrate")
    assert backup_tables(backup_fresh_db) == created

    ran = crm2(backup_fresh_db, tmp_path, "backup", "run")
    verified = crm2(backup_fresh_db, tmp_path, "backup", "verify")
    listed = crm2(backup_fresh_db, tmp_path, "backup", "list")

    assert "completed" in ran and ": ok; RTO" in verified and "drill ok" in listed
    refused = crm2(
        backup_fresh_db,
        tmp_path,
        "backup",
        "restore",
        listed.split()[0],
        "--target",
        "nope",
        "--to",
        "x",
        code=1,
    )
    assert "No such backup target" in refused or "no 'nope' artefact" in refused


def test_the_migrations_match_the_models(backup_fresh_db: TestDatabase, tmp_path: Path) -> None:
    crm2(backup_fresh_db, tmp_path, "migrate")
    import crm2_backup.models  # noqa: F401  (the tables join the shared metadata)

    def ours(obj: Any, name: Any, kind: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if kind == "table" else getattr(obj, "table", None)
        return table is None or str(table.name).startswith("backup_")

    def diff(sync: Any) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"include_object": ours})
        return list(compare_metadata(context, SQLModel.metadata))

    assert inspect_db(backup_fresh_db, diff) == []
