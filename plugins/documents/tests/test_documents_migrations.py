"""The plugin's migrations with only the core and documents: round-trip, no drift.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from crm2_core.testing import PluginMigrations, TestDatabase


def test_round_trip_and_no_drift_with_only_documents(crm2_fresh_database: TestDatabase) -> None:
    check = PluginMigrations("documents", crm2_fresh_database)
    created = check.assert_round_trip_and_no_drift()
    assert created == {
        "documents_kind",
        "documents_document",
        "documents_version",
        "documents_credential",
    }
    assert check.tables("deals_") == set()  # documents needs no deals
    keys = check.scalars("SELECT key FROM documents_kind")
    assert sorted(keys) == ["contract", "identity", "invoice", "other", "policy"]
