"""The plugin's migrations with only the core and payments: round-trip, no drift from the models.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from crm2_core.testing import PluginMigrations, TestDatabase


def test_round_trip_and_no_drift_with_only_payments(crm2_fresh_database: TestDatabase) -> None:
    check = PluginMigrations("payments", crm2_fresh_database)
    created = check.assert_round_trip_and_no_drift()
    assert {"payments_payment", "payments_allocation", "payments_schedule",
            "payments_statement_line", "payments_webhook_delivery"} <= created  # fmt: skip
    assert check.tables("deals_") == set()  # payments needs no deals
