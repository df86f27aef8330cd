"""The plugin's migrations with only the core and tasks: round-trip, and no drift from the models.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from crm2_core.testing import PluginMigrations, TestDatabase


def test_round_trip_and_no_drift_with_only_tasks(crm2_fresh_database: TestDatabase) -> None:
    check = PluginMigrations("tasks", crm2_fresh_database)
    created = check.assert_round_trip_and_no_drift()
    assert {"tasks_task", "tasks_reminder", "tasks_sla_timer", "tasks_rule"} <= created
    assert check.tables("deals_") == set()  # tasks needs no deals
    keys = check.scalars("SELECT builtin_key FROM tasks_rule")
    assert sorted(keys) == ["deals-follow-up", "deals-policy-renewal"]  # seeded once, not twice
