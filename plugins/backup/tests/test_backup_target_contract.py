"""The built-in SQLite target keeps the contract third-party targets are tested with."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from crm2_backup.targets.sqlite import SqliteTarget
from crm2_backup.testing import TargetContract


class TestSqliteTarget(TargetContract):
    @pytest.fixture
    def target(self, tmp_path: Path) -> SqliteTarget:
        source = tmp_path / "live.db"
        with closing(sqlite3.connect(source)) as conn:
            conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
            conn.executemany("INSERT INTO note (body) VALUES (?)", [("a",), ("b",)])
            conn.commit()
        return SqliteTarget(f"sqlite+aiosqlite:///{source}")

    @pytest.fixture
    def restore_to(self, tmp_path: Path) -> str:
        return str(tmp_path / "restored.db")
