"""The migrations with only the core and notifications: round-trip, no drift from the models.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from crm2_core.testing import PluginMigrations, TestDatabase


def test_round_trip_and_no_drift_with_only_notifications(
    crm2_fresh_database: TestDatabase,
) -> None:
    check = PluginMigrations("notifications", crm2_fresh_database)
    created = check.assert_round_trip_and_no_drift()
    assert {"notifications_rule", "notifications_notification", "notifications_delivery"} <= created
    assert check.tables("deals_") == set()  # notifications needs no deals
