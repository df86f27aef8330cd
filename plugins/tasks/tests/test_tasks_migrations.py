"""The plugin's migrations: round-trip on SQLite and PostgreSQL, and no drift from the models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from crm2_core import migrate
from crm2_core.db.engine import create_engine
from crm2_core.plugins import PluginRegistry, build_plugin_manager
from crm2_core.settings import Settings
from crm2_core.testing.databases import (
    TestDatabase,
    create_postgres_database,
    drop_postgres_database,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tasks_fresh_db" in metafunc.fixturenames:
        backends = [b.strip() for b in str(metafunc.config.getoption("--crm2-db")).split(",")]
        metafunc.parametrize("tasks_fresh_db", [b for b in backends if b], indirect=True)


@pytest.fixture
def tasks_fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    if request.param == "sqlite":
        yield TestDatabase("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}")
        return
    admin_url = str(request.config.getoption("--crm2-postgres-url"))
    database = create_postgres_database(admin_url, prefix="crm2_tasks_mig")
    try:
        yield database
    finally:
        drop_postgres_database(admin_url, database)


@pytest.fixture
async def engine(tasks_fresh_db: TestDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(_env_file=None, database_url=tasks_fresh_db.url))  # type: ignore[call-arg]
    try:
        yield engine
    finally:
        await engine.dispose()


def tasks_only() -> PluginRegistry:
    return build_plugin_manager(Settings(_env_file=None, plugins="tasks"))  # type: ignore[call-arg]


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_downgrade_upgrade_with_only_tasks(engine: AsyncEngine) -> None:
    registry = tasks_only()
    await migrate.upgrade(engine, registry)
    created = {t for t in await tables(engine) if t.startswith("tasks_")}
    assert {"tasks_task", "tasks_reminder", "tasks_sla_timer", "tasks_rule"} <= created
    assert not any(t.startswith("deals_") for t in await tables(engine))
    async with engine.connect() as conn:
        keys = (await conn.execute(text("SELECT builtin_key FROM tasks_rule"))).scalars().all()
    assert sorted(keys) == ["deals-follow-up", "deals-policy-renewal"]
    await migrate.downgrade(engine, registry, plugin="tasks")
    assert not any(t.startswith("tasks_") for t in await tables(engine))
    await migrate.upgrade(engine, registry)
    assert created <= await tables(engine)
    assert all(state.up_to_date for state in await migrate.states(engine, registry))


async def test_the_migrations_match_the_models(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine, tasks_only())

    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(
            sync_conn,  # type: ignore[arg-type]
            opts={
                "include_object": lambda obj, name, kind, reflected, compare_to: (
                    (kind != "table" or str(name).startswith("tasks_"))
                    and not (
                        kind != "table"
                        and not str(getattr(obj, "table", obj).name).startswith("tasks_")
                    )
                ),
            },
        )
        return list(compare_metadata(context, SQLModel.metadata))

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []
