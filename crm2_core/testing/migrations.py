"""A plugin's own Alembic branch, checked on an empty database through the ``crm2`` command line.

Every plugin ships the same two checks: its migrations go up, down to ``base`` and up
again with only the core and that plugin enabled, and what they build matches the
plugin's models (no drift). ``PluginMigrations`` runs them; the ``crm2_fresh_database``
fixture (``pytest_plugin.py``) hands it an empty database per backend::

    def test_migrations(crm2_fresh_database: TestDatabase) -> None:
        check = PluginMigrations("tasks", crm2_fresh_database)
        created = check.assert_round_trip_and_no_drift()
        assert {"tasks_task", "tasks_rule"} <= created
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from crm2_core.testing.app import TEST_JWT_SECRET
from crm2_core.testing.databases import TestDatabase

T = TypeVar("T")


class PluginMigrations:
    """The ``crm2 migrate`` commands on ``database`` with ``plugins`` enabled (``plugin`` first).

    ``prefixes`` are the table-name prefixes that belong to the plugin (default
    ``"<plugin>_"``); ``env`` adds ``CRM2_*`` settings the plugin needs to start.
    """

    def __init__(
        self,
        plugin: str,
        database: TestDatabase,
        *,
        plugins: Sequence[str] = (),
        prefixes: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.plugin = plugin
        self.database = database
        self.plugins = [plugin, *(p for p in plugins if p != plugin)]
        self.prefixes = tuple(prefixes) or (f"{plugin}_",)
        self.env = {
            "CRM2_DATABASE_URL": database.url,
            "CRM2_PLUGINS": ",".join(self.plugins),
            "CRM2_ENV": "test",
            "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
            **(env or {}),
        }

    def crm2(self, *args: str, code: int = 0) -> str:
        """Run ``crm2 <args>`` in-process; assert the exit code, return the output."""
        from crm2_core.cli.main import build_cli

        result = CliRunner().invoke(build_cli(), list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    def inspect_db(self, work: Callable[[Connection], T]) -> T:
        """``work(sync_connection)`` on a connection of its own (engine disposed after)."""

        async def run() -> T:
            engine = create_async_engine(self.database.url)
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(work)
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def tables(self, *prefixes: str) -> set[str]:
        """The tables whose names start with ``prefixes`` (default: the plugin's)."""
        wanted = prefixes or self.prefixes
        names = self.inspect_db(lambda sync: inspect(sync).get_table_names())
        return {n for n in names if n.startswith(wanted)}

    def scalars(self, sql: str) -> list[Any]:
        """The first column of every row ``sql`` returns."""
        return self.inspect_db(lambda sync: list(sync.execute(text(sql)).scalars().all()))

    def upgrade(self) -> set[str]:
        """``crm2 migrate``; returns the plugin's tables."""
        self.crm2("migrate")
        return self.tables()

    def assert_round_trip(self) -> set[str]:
        """Up, down to ``base`` on the plugin's own branch, up again: same tables, nothing pending.

        Returns the plugin's tables (after the second upgrade, so data migrations ran twice).
        """
        created = self.upgrade()
        assert created, f"crm2 migrate created no {self.prefixes} tables"
        self.crm2("migrate", "--plugin", self.plugin, "downgrade", "base")
        assert self.tables() == set(), "downgrade base left the plugin's tables behind"
        assert self.upgrade() == created
        assert "pending" not in self.crm2("migrate", "current")
        return created

    def drift(self, models: str | None = None) -> list[Any]:
        """Alembic's differences between the plugin's tables and its models (``[]``: none).

        ``models`` is the module whose import registers the tables (``crm2_<plugin>.models``).
        """
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext
        from sqlmodel import SQLModel

        importlib.import_module(models or f"crm2_{self.plugin}.models")
        prefixes = self.prefixes

        def ours(obj: Any, name: Any, kind: str, reflected: bool, compare_to: Any) -> bool:
            table = obj if kind == "table" else getattr(obj, "table", None)
            return table is None or str(table.name).startswith(prefixes)

        def diff(sync: Connection) -> list[Any]:
            context = MigrationContext.configure(sync, opts={"include_object": ours})
            return list(compare_metadata(context, SQLModel.metadata))

        return self.inspect_db(diff)

    def assert_round_trip_and_no_drift(self, models: str | None = None) -> set[str]:
        """:meth:`assert_round_trip`, then no drift on the result; returns the plugin's tables.

        One database for both checks: the drift is compared on the schema the second
        upgrade built, which must equal the first (the round trip asserts it).
        """
        created = self.assert_round_trip()
        assert self.drift(models) == []
        return created
