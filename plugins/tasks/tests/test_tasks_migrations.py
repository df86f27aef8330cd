"""The plugin's migrations with only the core and tasks: round-trip, and no drift from the models.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import inspect, text

from crm2_core.testing import PluginMigrations, TestDatabase

BEFORE_NAME_KEYS = "4e2a9c6b1d07"


def test_round_trip_and_no_drift_with_only_tasks(crm2_fresh_database: TestDatabase) -> None:
    check = PluginMigrations("tasks", crm2_fresh_database)
    created = check.assert_round_trip_and_no_drift()
    assert {"tasks_task", "tasks_reminder", "tasks_sla_timer", "tasks_rule"} <= created
    assert check.tables("deals_") == set()  # tasks needs no deals
    keys = check.scalars("SELECT builtin_key FROM tasks_rule")
    assert sorted(keys) == ["deals-follow-up", "deals-policy-renewal"]  # seeded once, not twice


def _add_calendar(check: PluginMigrations, name: str) -> None:
    row_id = uuid.uuid4()

    def insert(sync: Any) -> None:
        sync.execute(
            text(
                "INSERT INTO tasks_calendar (id, name, timezone, hours, holidays, created_at,"
                " updated_at, version) VALUES (:id, :name, 'UTC', '{}', '[]',"
                " '2026-12-01 10:00:00+00:00', '2026-12-01 10:00:00+00:00', 1)"
            ),
            {"id": row_id if "postgresql" in check.database.url else row_id.hex, "name": name},
        )
        sync.commit()

    check.inspect_db(insert)


def test_upgrading_keys_admin_names_and_stops_at_names_that_differ_only_in_case(
    crm2_fresh_database: TestDatabase,
) -> None:
    check = PluginMigrations("tasks", crm2_fresh_database)
    check.upgrade()
    check.crm2("migrate", "--plugin", "tasks", "downgrade", BEFORE_NAME_KEYS)
    _add_calendar(check, "Élan")
    _add_calendar(check, "ÉLAN")
    # `crm2 migrate` names the refusing revision in one line (exit 1)
    refused = r"revision 9b3e5d7f1a24 .* RuntimeError: .*differ only in case.*'ÉLAN' .*and 'Élan'"
    with pytest.raises(AssertionError, match=refused):
        check.crm2("migrate")
    columns = check.inspect_db(lambda sync: inspect(sync).get_columns("tasks_calendar"))
    assert "name_key" not in {c["name"] for c in columns}  # nothing half done
    check.inspect_db(_rename_one)
    check.upgrade()
    assert sorted(check.scalars("SELECT name_key FROM tasks_calendar")) == ["élan", "élan 2"]
    keys = check.scalars("SELECT name_key FROM tasks_rule")
    assert len(keys) == 2 and all(k == k.casefold() for k in keys)  # shipped rules keyed


def _rename_one(sync: Any) -> None:
    sync.execute(text("UPDATE tasks_calendar SET name = 'Élan 2' WHERE name = 'ÉLAN'"))
    sync.commit()
