"""``q`` folds as the rest of crm2 does (``fold_text``): a final sigma and a dotted
capital I match what a user types, and rows stored before are folded again.

deals folded its search text with ``str.lower()``: "ΚΟΣΜΟΣ" was stored as "κοσμος"
(final sigma), so a search for "κοσμοσ" (the plain sigma PostgreSQL's ``lower()`` and
the core's ``folded`` write) found nothing, nor "istanbul" a client named "İstanbul".
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from deals_kit import API, Deals
from sqlalchemy import text

from crm2_core.testing import PluginMigrations, TestDatabase

BEFORE_FOLDING = "8272d6f10a27"


@pytest.mark.parametrize(
    ("name", "q"),
    [("ΚΟΣΜΟΣ Ltd", "κοσμοσ"), ("ΚΟΣΜΟΣ Ltd", "ΚΟΣΜΟΣ"), ("İstanbul Tours", "istanbul")],
)
async def test_q_finds_a_client_as_the_core_folds_text(deals: Deals, name: str, q: str) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers, name=name)
    found = await deals.client.get(f"{API}/clients", params={"q": q}, headers=admin.headers)
    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()["items"]] == [client["id"]]


def test_the_migration_folds_search_text_stored_before(
    crm2_fresh_database: TestDatabase,
) -> None:
    check = PluginMigrations("deals", crm2_fresh_database)
    check.upgrade()
    check.crm2("migrate", "--plugin", "deals", "downgrade", BEFORE_FOLDING)
    check.crm2("users", "create", "--email", "a@example.com", "--password", "x" * 16,
               "--role", "agent")  # fmt: skip
    (owner,) = check.scalars("SELECT id FROM auth_user")
    pg = "postgresql" in check.database.url
    stored = {
        "ΚΟΣΜΟΣ": ("κοσμος", "κοσμοσ"),
        "İstanbul": ("İstanbul".lower(), "istanbul"),
        "Plain": ("plain +49 30 1 49301", "plain +49 30 1 49301"),
    }

    def insert(sync: Any) -> None:
        for name, (old, _) in stored.items():
            row_id = uuid.uuid4()
            phones = '["+49 30 1"]' if name == "Plain" else "[]"
            sync.execute(
                text(
                    "INSERT INTO deals_client (id, kind, name, emails, phones, tax_id, address,"
                    " tags, owner_id, archived, search_text, created_at, updated_at, version)"
                    " VALUES (:id, 'company', :name, '[]', :phones, NULL, '', '[]', :owner,"
                    " false, :search, '2026-12-01 00:00:00+00:00', '2026-12-01 00:00:00+00:00',"
                    " 1)"
                ),
                {
                    "id": row_id if pg else row_id.hex,
                    "name": name,
                    "phones": phones,
                    "owner": owner,
                    "search": old,
                },
            )
        sync.commit()

    check.inspect_db(insert)
    check.upgrade()
    rows = check.inspect_db(
        lambda sync: dict(sync.execute(text("SELECT name, search_text FROM deals_client")).all())
    )
    assert rows == {name: new for name, (_, new) in stored.items()}
    check.crm2("migrate", "--plugin", "deals", "downgrade", BEFORE_FOLDING)  # a no-op down
    check.upgrade()
