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


def test_upgrading_fills_tag_keys_and_normalises_the_search_text(
    crm2_fresh_database: TestDatabase,
) -> None:
    """Documents written before the tag keys and the normalised search text get both."""
    import json
    import uuid

    from sqlalchemy import inspect, text

    check = PluginMigrations("documents", crm2_fresh_database)
    check.upgrade()
    check.crm2("migrate", "--plugin", "documents", "downgrade", "eb532986e7eb")
    columns = check.inspect_db(lambda sync: inspect(sync).get_columns("documents_document"))
    assert "tag_keys" not in {c["name"] for c in columns}
    document_id = uuid.uuid4()

    def insert(sync: object) -> None:
        sync.execute(  # type: ignore[attr-defined]
            text(
                "INSERT INTO documents_document (id, title, kind, tags, current_version,"
                " search_text, created_at, updated_at, version) VALUES (:id, :title, 'other',"
                " :tags, 0, :search, '2026-12-01 10:00:00+00:00', '2026-12-01 10:00:00+00:00', 1)"
            ),
            {
                "id": document_id if "postgresql" in check.database.url else document_id.hex,
                "title": "Re\u0301sume\u0301",
                "tags": json.dumps(["Invoice", "\u00c9t\u00e9"]),
                "search": "re\u0301sume\u0301\ninvoice\n\u00e9t\u00e9",
            },
        )
        sync.commit()  # type: ignore[attr-defined]

    check.inspect_db(insert)
    check.upgrade()
    [keys] = check.scalars("SELECT tag_keys FROM documents_document")
    assert (json.loads(keys) if isinstance(keys, str) else keys) == ["invoice", "\u00e9t\u00e9"]
    [search] = check.scalars("SELECT search_text FROM documents_document")
    assert search == "r\u00e9sum\u00e9\ninvoice\n\u00e9t\u00e9"


def test_upgrading_case_folds_the_search_text(crm2_fresh_database: TestDatabase) -> None:
    """Documents written while the search text was only lower-cased are found by a folded
    ``q`` after the upgrade (``straße`` → ``strasse``); a downgrade gives the old text back."""
    import json
    import uuid

    from sqlalchemy import text

    check = PluginMigrations("documents", crm2_fresh_database)
    check.upgrade()
    check.crm2("migrate", "--plugin", "documents", "downgrade", "2b8e6d4f1a93")
    document_id = uuid.uuid4()

    def insert(sync: object) -> None:
        sync.execute(  # type: ignore[attr-defined]
            text(
                "INSERT INTO documents_document (id, title, kind, tags, tag_keys,"
                " current_version, search_text, created_at, updated_at, version) VALUES (:id,"
                " :title, 'other', :tags, :keys, 0, :search, '2026-12-01 10:00:00+00:00',"
                " '2026-12-01 10:00:00+00:00', 1)"
            ),
            {
                "id": document_id if "postgresql" in check.database.url else document_id.hex,
                "title": "Stra\u00dfe",
                "tags": json.dumps(["Gro\u00df"]),
                "keys": json.dumps(["gross"]),
                "search": "stra\u00dfe\ngro\u00df",
            },
        )
        sync.commit()  # type: ignore[attr-defined]

    check.inspect_db(insert)
    check.upgrade()
    assert check.scalars("SELECT search_text FROM documents_document") == ["strasse\ngross"]
    check.crm2("migrate", "--plugin", "documents", "downgrade", "2b8e6d4f1a93")
    assert check.scalars("SELECT search_text FROM documents_document") == ["stra\u00dfe\ngro\u00df"]
