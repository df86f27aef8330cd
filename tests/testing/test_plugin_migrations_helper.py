"""The kit's PluginMigrations fails when it should: a stray table is drift, and a
downgrade that leaves a table of the plugin behind breaks the round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from crm2_core.testing import PluginMigrations, TestDatabase


def test_a_stray_table_is_drift_and_breaks_the_round_trip(tmp_path: Path) -> None:
    database = TestDatabase("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'drift.db'}")
    check = PluginMigrations("documents", database)
    assert "documents_kind" in check.upgrade()
    assert check.drift() == []

    def add_stray(sync: Connection) -> None:
        sync.execute(text("CREATE TABLE documents_stray (id INTEGER PRIMARY KEY)"))
        sync.commit()

    check.inspect_db(add_stray)
    assert check.drift() != []
    with pytest.raises(AssertionError, match="left the plugin's tables behind"):
        check.assert_round_trip()
